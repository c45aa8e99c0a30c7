-- A rebuild that was interrupted resumes instead of emptying its table again, when the mirror has not
-- changed since it started. mirror_version counts the staged pages that changed the stream's mirror
-- (bumped in the same transaction); rebuild_version is the mirror_version a rebuild started from (NULL:
-- no rebuild in progress), rebuild_cursor the mirror page cursor up to which every row is confirmed
-- (NULL: from the start), rebuild_rows the rows confirmed (that prefix and the pages beyond it in
-- rebuild_done, a JSON array of the cursors those pages start after), and rebuild_page_rows the rows
-- a page of it holds (a resumed rebuild reads the same pages).
ALTER TABLE stream_state ADD COLUMN mirror_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stream_state ADD COLUMN rebuild_version INTEGER;
ALTER TABLE stream_state ADD COLUMN rebuild_cursor TEXT;
ALTER TABLE stream_state ADD COLUMN rebuild_rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stream_state ADD COLUMN rebuild_done TEXT;
ALTER TABLE stream_state ADD COLUMN rebuild_page_rows INTEGER NOT NULL DEFAULT 0;
