-- add_users: up

