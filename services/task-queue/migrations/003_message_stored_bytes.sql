-- Up Migration
-- Each message's stored size, measured once when it is written: the UTF-8
-- bytes of type, tool, content, output and input as Postgres renders it
-- (input::text, which can be much longer than what was sent: numbers are
-- written out in full, spaces follow every ':' and ','). ListMessages sums it
-- to end a page before 4 MiB without rendering every candidate row's input.
-- Rows written before this column existed have NULL and are measured when read.

ALTER TABLE task_message ADD COLUMN stored_bytes integer NULL;
