"""A database's schema read object by object from PostgreSQL's catalogs, and how two
readings differ.

A reading maps each object's subject (``index public.tasks_title_idx``, ``column
public.tasks.status``) to a text that describes it, so two readings of two
databases, or of one database at two moments, compare entry by entry and every
difference names its object. Objects are keyed by name, never by OID: a table
dropped and created again the same way reads the same. Column order is not
compared (a column dropped and added back comes last; PostgreSQL cannot move it).

Read: schemas, tables (persistence, partitioning, inheritance, row security,
options), columns (type, nullability, default, identity, generation, collation),
constraints, indexes (those that are not a constraint's), sequences, views and
materialized views, functions and procedures, triggers, rules, row security
policies, types (enum values in order, domains, composites, ranges), extensions,
comments on all of these, privileges on them, and default privileges. Objects that
belong to an extension are the extension's: only the extension itself is read.
Not read: owners, operators, casts, collations, text search objects, publications
and event triggers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, text

Schema = Mapping[str, str]
"""A reading: subject -> description."""

# Schemas whose objects are PostgreSQL's own.
_USER_SCHEMA = """
    {n}.nspname <> 'information_schema' AND {n}.nspname NOT LIKE 'pg\\_%'
"""


def _user(alias: str) -> str:
    return _USER_SCHEMA.format(n=alias)


def _own(catalog: str, oid: str) -> str:
    """Not part of an extension, nor made by PostgreSQL along with another object
    (a range type's constructor functions, an identity column's sequence)."""
    return f"""NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass
        AND e.objid = {oid} AND e.deptype IN ('e', 'i'))"""


# Every query returns the same columns: the table an object belongs to (schema and
# name; NULL for objects of no table), its subject, its description, its comment and
# its privileges (text[] or NULL).
_QUERIES: tuple[str, ...] = (
    # schemas
    f"""
    SELECT n.nspname, NULL, format('schema %I', n.nspname), '',
           obj_description(n.oid, 'pg_namespace'), n.nspacl::text[]
    FROM pg_namespace n
    WHERE {_user("n")} AND {_own("pg_namespace", "n.oid")}
    """,
    # tables, views, materialized views, foreign tables and sequences
    f"""
    SELECT n.nspname, c.relname,
           format('%s %I.%I', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
               WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
               WHEN 'f' THEN 'foreign table' ELSE 'sequence' END, n.nspname, c.relname),
           concat_ws(' ',
               CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END,
               CASE WHEN c.relkind = 'p' THEN 'partitioned by ' || pg_get_partkeydef(c.oid) END,
               CASE WHEN c.relispartition THEN 'partition ' || pg_get_expr(c.relpartbound, c.oid)
               END,
               (SELECT 'inherits ' || string_agg(format('%I.%I', pn.nspname, p.relname), ', '
                                                 ORDER BY i.inhseqno)
                FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid),
               CASE WHEN c.relrowsecurity THEN 'row level security' END,
               CASE WHEN c.relforcerowsecurity THEN 'forced' END,
               CASE WHEN c.reloptions IS NOT NULL
                    THEN 'with (' || array_to_string(c.reloptions, ', ') || ')' END,
               CASE WHEN c.relkind IN ('v', 'm') THEN 'as ' || pg_get_viewdef(c.oid) END,
               (SELECT format('%s start %s increment %s minvalue %s maxvalue %s cache %s%s',
                              s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin,
                              s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' END)
                FROM pg_sequence s WHERE s.seqrelid = c.oid),
               (SELECT format('owned by %I.%I.%I', tn.nspname, t.relname, a.attname)
                FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                JOIN pg_namespace tn ON tn.oid = t.relnamespace
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'a' AND c.relkind = 'S')),
           obj_description(c.oid, 'pg_class'), c.relacl::text[]
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_user("n")}
      AND {_own("pg_class", "c.oid")}
    """,
    # columns of tables
    f"""
    SELECT n.nspname, c.relname, format('column %I.%I.%I', n.nspname, c.relname, a.attname),
           concat_ws(' ', format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attcollation <> t.typcollation
                    THEN 'COLLATE ' || a.attcollation::regcollation::text END,
               CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END,
               CASE WHEN a.attgenerated = 's'
                    THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                    WHEN d.adbin IS NOT NULL THEN 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)
               END,
               CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
                    WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END),
           col_description(c.oid, a.attnum), a.attacl::text[]
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
      AND {_user("n")} AND {_own("pg_class", "c.oid")}
    """,
    # constraints of tables
    f"""
    SELECT n.nspname, c.relname, format('constraint %I on %I.%I', k.conname, n.nspname, c.relname),
           pg_get_constraintdef(k.oid), obj_description(k.oid, 'pg_constraint'), NULL
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_user("n")} AND {_own("pg_class", "c.oid")}
    """,
    # indexes, other than those of constraints
    f"""
    SELECT n.nspname, t.relname, format('index %I.%I', n.nspname, c.relname),
           pg_get_indexdef(c.oid) || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END,
           obj_description(c.oid, 'pg_class'), NULL
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_user("n")} AND {_own("pg_class", "t.oid")}
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid
                      AND k.contype IN ('p', 'u', 'x'))
    """,
    # functions, procedures and aggregates
    f"""
    SELECT n.nspname, NULL,
           format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'procedure'
               WHEN 'a' THEN 'aggregate' ELSE 'function' END,
               n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
           CASE WHEN p.prokind = 'a' THEN 'returns ' || pg_get_function_result(p.oid)
                ELSE pg_get_functiondef(p.oid) END,
           obj_description(p.oid, 'pg_proc'), p.proacl::text[]
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {_user("n")} AND {_own("pg_proc", "p.oid")}
    """,
    # triggers
    f"""
    SELECT n.nspname, c.relname, format('trigger %I on %I.%I', g.tgname, n.nspname, c.relname),
           pg_get_triggerdef(g.oid) || CASE g.tgenabled WHEN 'D' THEN ' (DISABLED)'
               WHEN 'R' THEN ' (ENABLE REPLICA)' WHEN 'A' THEN ' (ENABLE ALWAYS)' ELSE '' END,
           obj_description(g.oid, 'pg_trigger'), NULL
    FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT g.tgisinternal AND {_user("n")} AND {_own("pg_class", "c.oid")}
    """,
    # rules other than a view's own
    """
    SELECT r.schemaname, r.tablename,
           format('rule %I on %I.%I', r.rulename, r.schemaname, r.tablename), r.definition,
           NULL, NULL
    FROM pg_rules r
    WHERE r.schemaname <> 'information_schema' AND r.schemaname NOT LIKE 'pg\\_%'
    """,
    # row security policies
    """
    SELECT p.schemaname, p.tablename,
           format('policy %I on %I.%I', p.policyname, p.schemaname, p.tablename),
           concat_ws(' ', p.permissive, 'FOR', p.cmd, 'TO', array_to_string(p.roles, ', '),
                     'USING (' || p.qual || ')', 'WITH CHECK (' || p.with_check || ')'),
           NULL, NULL
    FROM pg_policies p
    """,
    # types: enums, domains, composites, ranges (a table's row type and arrays are internal)
    f"""
    SELECT n.nspname, NULL, format('type %I.%I', n.nspname, t.typname),
           CASE t.typtype
               WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                                          ORDER BY e.enumsortorder)
                                          FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
               WHEN 'd' THEN concat_ws(' ', 'domain over', format_type(t.typbasetype, t.typtypmod),
                   CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                   'DEFAULT ' || t.typdefault,
                   (SELECT string_agg(format('CONSTRAINT %I %s', k.conname,
                                             pg_get_constraintdef(k.oid)), ' ' ORDER BY k.conname)
                    FROM pg_constraint k WHERE k.contypid = t.oid))
               WHEN 'c' THEN 'composite (' || (SELECT string_agg(format('%I %s', a.attname,
                                                   format_type(a.atttypid, a.atttypmod)), ', '
                                                   ORDER BY a.attnum)
                                               FROM pg_attribute a WHERE a.attrelid = t.typrelid
                                                 AND a.attnum > 0 AND NOT a.attisdropped) || ')'
               WHEN 'r' THEN 'range over ' || (SELECT format_type(r.rngsubtype, NULL)
                                               FROM pg_range r WHERE r.rngtypid = t.oid)
               ELSE 'base type'
           END,
           obj_description(t.oid, 'pg_type'), t.typacl::text[]
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b') AND {_user("n")}
      AND {_own("pg_type", "t.oid")}
    """,
    # extensions
    """
    SELECT NULL, NULL, format('extension %I', x.extname),
           format('version %s in schema %I', x.extversion, n.nspname),
           obj_description(x.oid, 'pg_extension'), NULL
    FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
    """,
    # default privileges
    """
    SELECT NULL, NULL,
           format('default privileges on %s of role %s%s',
                  CASE a.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
                      WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' ELSE 'schemas' END,
                  a.defaclrole::regrole,
                  CASE WHEN a.defaclnamespace <> 0
                       THEN ' in schema ' || a.defaclnamespace::regnamespace END),
           array_to_string(ARRAY(SELECT unnest(a.defaclacl::text[]) ORDER BY 1), ', '),
           NULL, NULL
    FROM pg_default_acl a
    """,
)


@dataclass(frozen=True)
class SchemaDifference:
    """One object that differs between two readings; ``None`` where it is absent."""

    subject: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before is None:
            return f"{self.subject}: not there before, there after" + _shown(self.after)
        if self.after is None:
            return f"{self.subject}: there before, gone after" + _shown(self.before)
        if _short(self.before) and _short(self.after):
            return f"{self.subject}: {_empty(self.before)} before, {_empty(self.after)} after"
        changed = difflib.unified_diff(
            self.before.splitlines(), self.after.splitlines(), "before", "after", lineterm="", n=1
        )
        return f"{self.subject} differs:\n" + "\n".join(f"    {line}" for line in changed)


def _short(value: str) -> bool:
    return "\n" not in value and len(value) <= 120


def _empty(value: str) -> str:
    return value or "(nothing)"


def _shown(value: str | None) -> str:
    return f" ({value})" if value and _short(value) else ""


def read_schema(
    conn: Connection,
    *,
    exclude_tables: Iterable[tuple[str | None, str]] = (),
    exclude_schemas: Iterable[str] = (),
) -> dict[str, str]:
    """Read every object of the database's own schemas, subject -> description.

    ``exclude_tables`` (schema, name) are left out with everything on them (columns,
    constraints, indexes, triggers...); a schema of None is the current schema.
    ``exclude_schemas`` leaves out those schemas as objects, not what is in them.
    A tracking table and its schema are what one excludes: they are not the
    migrations' own objects.
    """
    current = conn.execute(text("SELECT current_schema()")).scalar()
    tables = {(schema or current, name) for schema, name in exclude_tables}
    schemas = {f"schema {_ident(conn, name)}" for name in exclude_schemas}
    found: dict[str, str] = {}
    for query in _QUERIES:
        for table_schema, table, subject, description, comment, acl in conn.execute(text(query)):
            if (table_schema, table) in tables or subject in schemas:
                continue
            found[subject] = description
            if comment is not None:
                found[f"comment on {subject}"] = comment
            if acl is not None:
                found[f"privileges on {subject}"] = ", ".join(sorted(acl))
    return dict(sorted(found.items()))


def _ident(conn: Connection, name: str) -> str:
    """A name as ``format('%I')`` shows it in subjects: quoted only when it must be."""
    return str(
        conn.execute(text("SELECT format('%I', CAST(:name AS text))"), {"name": name}).scalar()
    )


def compare_schemas(before: Schema, after: Schema) -> list[SchemaDifference]:
    """Every object absent from one reading or described differently, by subject."""
    return [
        SchemaDifference(subject, before.get(subject), after.get(subject))
        for subject in sorted(before.keys() | after.keys())
        if before.get(subject) != after.get(subject)
    ]
