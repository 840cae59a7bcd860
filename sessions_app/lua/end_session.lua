-- end_session: ends a user's current chat session for both participants.
--
-- KEYS: none (see lib.lua).
-- ARGV[1] user id
-- Returns the session JSON that was ended, or false (nil) if the user had none.

return end_user_session(ARGV[1])
