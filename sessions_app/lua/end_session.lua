-- end_session: ends a user's current chat session for both participants.
--
-- KEYS[1], KEYS[2] the pool's prefix and sessions:active (see lib.lua)
-- KEYS[3] the user's <prefix>user_session:<u>
-- Returns the session JSON that was ended, or false (nil) if the user had none.

return end_user_session(KEYS[3])
