"""The sample project's ORM models, as they stand at the head revision."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


task_status = postgresql.ENUM("todo", "doing", "done", name="task_status")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("email", name="uq_users_email"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    display_name: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.text("now()")
    )
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (sa.UniqueConstraint("owner_id", "slug", name="uq_projects_owner_id_slug"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", name="fk_projects_owner_id_users", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.Text)
    slug: Mapped[str] = mapped_column(sa.String(120))


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (sa.Index("ix_tasks_project_id_status", "project_id", "status"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        sa.ForeignKey("projects.id", name="fk_tasks_project_id")
    )
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", name="fk_tasks_assignee_id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(task_status, server_default="todo")


metadata = Base.metadata
