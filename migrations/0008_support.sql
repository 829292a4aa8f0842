-- support-service owns schema `support`: tickets and the messages of their conversation.
-- Applied once, inside a transaction, by the migration runner, which records the version;
-- no BEGIN/COMMIT here. user_id, author_id and order_id point into other services, so
-- they have no foreign keys: the component checks an order through order-service's API.

CREATE SCHEMA IF NOT EXISTS support;

CREATE TABLE support.tickets (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL,
    subject    text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    order_id   uuid,
    -- The states of TicketStatus; which moves are legal is the component's state machine.
    status     text        NOT NULL DEFAULT 'open'
               CHECK (status IN ('open', 'answered', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The last message or status change; set by the statement that makes it, no trigger.
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE support.messages (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    ticket_id   uuid        NOT NULL REFERENCES support.tickets (id) ON DELETE CASCADE,
    author_id   uuid        NOT NULL,
    author_role text        NOT NULL CHECK (author_role IN ('customer', 'staff')),
    body        text        NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    -- clock_timestamp(), not now(): now() is the start of the writing transaction, and
    -- messages to one ticket are written one at a time under the ticket's row lock, so the
    -- wall clock at insert keeps the conversation in the order it was written.
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- "My tickets", newest first (keyset pages on created_at, id); staff lists filter by status.
CREATE INDEX tickets_user_id_created_at_idx ON support.tickets (user_id, created_at DESC, id DESC);
CREATE INDEX tickets_status_created_at_idx ON support.tickets (status, created_at DESC, id DESC);
-- "Messages of a ticket", oldest first.
CREATE INDEX messages_ticket_id_created_at_idx ON support.messages (ticket_id, created_at, id);
