-- TODO: write this migration
/* later */

