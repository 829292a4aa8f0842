-- Failed logins, counted per bucket so user-service can refuse a guesser before bcrypt runs.
-- One row per bucket and window, not per attempt: the table stays as small as the number of
-- accounts and addresses that failed recently, and expired rows are pruned as logins come in.

CREATE TABLE users.login_failures (
    -- `account_address`: one account from one client address (the strict bucket);
    -- `account`: one account from anywhere (looser, against guessing spread over addresses);
    -- `address`: one client address across all accounts (against trying many accounts).
    kind           text        NOT NULL CHECK (kind IN ('account_address', 'account', 'address')),
    -- The normalised email, the client address, or both joined by a space (an address has
    -- no space). user-service cuts an email to 255 characters for this: no stored email
    -- is longer, so only addresses that cannot log in anyway share a bucket.
    subject        text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 400),
    -- Failures counted since `window_started`, including attempts still being checked.
    failures       integer     NOT NULL CHECK (failures >= 0),
    window_started timestamptz NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- The pruning below looks for expired windows.
CREATE INDEX login_failures_window_started ON users.login_failures (window_started);

-- Counts a login attempt as a failure in its three buckets before the password is checked,
-- and answers 0 (go ahead) or, when a bucket is over its limit, the seconds until the window
-- of every such bucket has ended (refused).
-- A refused attempt is not counted, so hammering a locked bucket does not fill the others.
-- The upsert locks each bucket's row until the statement ends, so concurrent attempts on one
-- bucket are counted one after another: a burst cannot all read "under the limit". Rows are
-- locked in one order (account_address, account, address), so two attempts cannot deadlock.
-- Counting before the check means an attempt in progress holds a place until
-- `login_attempt_succeeded` gives it back.
CREATE FUNCTION users.login_attempt_begin(
    account text, address text, window_seconds integer,
    max_per_account_address integer, max_per_account integer, max_per_address integer
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    span interval := make_interval(secs => window_seconds);
    wait bigint;
BEGIN
    WITH counted AS (
        INSERT INTO users.login_failures AS f (kind, subject, failures, window_started)
        VALUES ('account_address', account || ' ' || address, 1, now()),
               ('account', account, 1, now()),
               ('address', address, 1, now())
        ON CONFLICT (kind, subject) DO UPDATE SET
            failures = CASE WHEN f.window_started <= now() - span THEN 1
                            ELSE least(f.failures, 1000000000) + 1 END,
            window_started = CASE WHEN f.window_started <= now() - span THEN now()
                                  ELSE f.window_started END
        RETURNING f.kind, f.failures, f.window_started
    )
    SELECT max(ceil(extract(epoch FROM c.window_started + span - now())))::bigint
      INTO wait
      FROM counted AS c
     WHERE c.failures > CASE c.kind
                            WHEN 'account_address' THEN max_per_account_address
                            WHEN 'account' THEN max_per_account
                            ELSE max_per_address
                        END;

    IF wait IS NOT NULL THEN
        UPDATE users.login_failures
           SET failures = failures - 1
         WHERE (kind, subject) IN (('account_address', account || ' ' || address),
                                   ('account', account), ('address', address));
        DELETE FROM users.login_failures
         WHERE (kind, subject) IN (('account_address', account || ' ' || address),
                                   ('account', account), ('address', address))
           AND failures = 0;
    END IF;

    -- A few expired rows per attempt keep the table small. Last, and skipping rows others
    -- hold, so that holding them never makes this attempt wait (no deadlock with the above).
    DELETE FROM users.login_failures
     WHERE (kind, subject) IN (
         SELECT f.kind, f.subject FROM users.login_failures AS f
          WHERE f.window_started <= now() - span
          LIMIT 16 FOR UPDATE SKIP LOCKED);

    RETURN CASE WHEN wait IS NULL THEN 0 ELSE greatest(wait, 1) END;
END
$$;

-- The attempt `login_attempt_begin` counted was the right password: the account's failures
-- (from this address and from anywhere) are forgotten, and the address gets its place back.
-- The address's other failures stay: logging in to one's own account between guesses at
-- others must not reset them. A bucket left with no failures is dropped. One statement per
-- row, in `login_attempt_begin`'s order, so a login ending and another beginning for the
-- same account cannot deadlock. Answers the number of rows changed.
CREATE FUNCTION users.login_attempt_succeeded(account text, address text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer := 0;
    rows integer;
BEGIN
    DELETE FROM users.login_failures
     WHERE kind = 'account_address' AND subject = account || ' ' || address;
    GET DIAGNOSTICS rows = ROW_COUNT;
    changed := changed + rows;
    DELETE FROM users.login_failures WHERE kind = 'account' AND subject = account;
    GET DIAGNOSTICS rows = ROW_COUNT;
    changed := changed + rows;
    UPDATE users.login_failures
       SET failures = failures - 1
     WHERE kind = 'address' AND subject = address AND failures > 0;
    GET DIAGNOSTICS rows = ROW_COUNT;
    changed := changed + rows;
    DELETE FROM users.login_failures
     WHERE kind = 'address' AND subject = address AND failures = 0;
    RETURN changed;
END
$$;
