-- add_users: undo what the up script did

