-- Sessions that can end. A login starts a session: a family of refresh tokens, each used
-- once. `POST /api/users/refresh` marks the token it gets used and adds the family's next
-- one; a used token coming back revokes the whole family (it was likely stolen); logout
-- revokes one family, logout-all every family of a user (docs/api.md#sessions).
-- Only the SHA-256 of a token is stored: a token is 32 random bytes, so its hash cannot be
-- reversed or guessed, and a copy of this table opens no session.

CREATE TABLE users.sessions (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid        NOT NULL REFERENCES users.users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Fixed at login (`refresh_token_expire_seconds` later): refreshing does not extend it.
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    -- `logout`, `logout_all`, or `reuse`: a token of the family was presented a second time.
    revoked_reason text        CHECK (revoked_reason IN ('logout', 'logout_all', 'reuse')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    CHECK (expires_at > created_at)
);

-- logout-all looks for a user's live sessions; login prunes expired ones.
CREATE INDEX sessions_user_live ON users.sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_at ON users.sessions (expires_at);

CREATE TABLE users.refresh_tokens (
    -- SHA-256 of the token's text, lower-case hex.
    token_hash text        PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    session_id uuid        NOT NULL REFERENCES users.sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    -- Set by the one refresh that rotated this token, by a conditional UPDATE (`WHERE used_at
    -- IS NULL`), so of two concurrent refreshes with it exactly one gets a new token.
    used_at    timestamptz
);

CREATE INDEX refresh_tokens_session ON users.refresh_tokens (session_id);
