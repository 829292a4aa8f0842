//! support-service: support tickets, a customer's conversation with staff, as a Spin HTTP
//! component routed at `/api/support/...`. A ticket about an order is checked against
//! order-service first. This file only maps HTTP to the domain (`domain`), order-service
//! (`order_client`) and the tables (`store`); it must not hold business rules.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

pub mod domain;
mod error;
mod order_client;
mod store;

use api::http::{json_response, read_json_object};
use api::query::{Cursor, Query};
use api::routes::Routes;
use api::upstream::Upstream;
use api::{ApiError, Caller};
use spin_sdk::http::{Params, Request, Response, Router};
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{NewTicket, Ticket, TicketFilter};
use crate::error::SupportError;

const SERVICE: &str = "support-service";

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/support", SERVICE)
        .post_async("/api/support/tickets", create_ticket)
        .get("/api/support/tickets", list_tickets)
        .get("/api/support/tickets/:ticket_id", get_ticket)
        .post("/api/support/tickets/:ticket_id/messages", post_message)
        .patch("/api/support/tickets/:ticket_id/status", change_status)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(create_ticket, list_tickets, get_ticket, post_message, change_status))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/support", "support"));
    doc
}

/// What the component needs from Spin variables, read per request.
struct Config {
    postgres_url: String,
}

impl Config {
    fn load() -> Result<Self, ApiError> {
        Ok(Self {
            postgres_url: api::config::variable("postgres_url")?,
        })
    }

    /// Where order-service answers (`order_service_url`): `http://order-service.spin.internal`
    /// in one host, a Service URL across pods (docs/deploy.md).
    fn orders() -> Result<Upstream, ApiError> {
        Upstream::from_variable(order_client::ORDER_SERVICE, "order_service_url")
    }

    fn open_db(&self) -> Result<Connection, ApiError> {
        api::db::open(&self.postgres_url)
    }
}

/// `{subject, message, order_id?}`: a new ticket with its first message, the caller's.
#[utoipa::path(post, path = "/api/support/tickets", tag = "support",
    summary = "Open a ticket with its first message",
    request_body = domain::TicketRequest,
    responses(
        (status = 201, description = "Opened; `Location` names it", body = domain::Conversation),
        (status = 404, description = "order_not_found: `order_id` is not one of the caller's orders", body = api::openapi::ErrorBody),
        (status = 502, description = "order_service_failed: order-service answered unusably", body = api::openapi::ErrorBody),
        (status = 503, description = "order_service_unavailable: order-service cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "order_service_timeout: order-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn create_ticket(request: Request, _params: Params) -> Result<Response, SupportError> {
    let caller = api::auth::caller(&request)?;
    let new_ticket = NewTicket::parse(&read_json_object(&request)?)?;
    let config = Config::load()?;
    if let Some(order_id) = new_ticket.order_id {
        // Ask order-service before opening the database, so no pooled connection is held
        // while waiting on another component. The caller's token goes along: order-service
        // answers 404 for an order that is not theirs.
        let orders = Config::orders()?;
        let authorization = request.header("authorization").and_then(|v| v.as_str());
        order_client::check_order(&orders, order_id, authorization).await?;
    }
    let db = config.open_db()?;
    let conversation =
        api::db::transaction(&db, |db| store::open_ticket(db, &caller, &new_ticket))?;
    let mut response = json_response(201, &conversation);
    response.set_header(
        "location",
        format!("/api/support/tickets/{}", conversation.ticket.id),
    );
    Ok(response)
}

/// The caller's tickets, newest first (`?limit=&cursor=&status=`). Staff see everyone's,
/// or one user's with `?user_id=`.
#[utoipa::path(get, path = "/api/support/tickets", tag = "support",
    summary = "The caller's tickets, newest first, without their messages",
    params(
        api::openapi::PageParams,
        ("status" = Option<domain::TicketStatus>, Query, description = "Only tickets in this status"),
        ("user_id" = Option<Uuid>, Query, description = "Staff only: one user's tickets (a customer's is ignored)"),
    ),
    responses(
        (status = 200, description = "One page", body = api::query::PageOf<domain::Ticket>),
        (status = 422, description = "validation_failed: bad limit, cursor, status or (staff) user_id", body = api::openapi::ErrorBody),
    ))]
fn list_tickets(request: Request, _params: Params) -> Result<Response, SupportError> {
    let caller = api::auth::caller(&request)?;
    let filter = TicketFilter::parse(&Query::parse(request.query())?, &caller)?;
    let db = Config::load()?.open_db()?;
    let tickets = store::list(&db, &filter)?;
    let page = filter.page.finish(tickets, |ticket| Cursor {
        created_at: ticket.created_at,
        id: ticket.id,
    });
    Ok(json_response(200, &page))
}

/// The ticket with its messages, oldest first.
#[utoipa::path(get, path = "/api/support/tickets/{ticket_id}", tag = "support",
    summary = "A ticket with its messages, oldest first",
    params(("ticket_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The ticket", body = domain::Conversation),
        (status = 404, description = "ticket_not_found: no such ticket, or not the caller's", body = api::openapi::ErrorBody),
    ))]
fn get_ticket(request: Request, params: Params) -> Result<Response, SupportError> {
    let caller = api::auth::caller(&request)?;
    let id = ticket_id(&params)?;
    let db = Config::load()?.open_db()?;
    match store::conversation(&db, id)? {
        Some(conversation) if caller.may_access(conversation.ticket.user_id) => {
            Ok(json_response(200, &conversation))
        }
        _ => Err(SupportError::TicketNotFound(id.to_string())),
    }
}

/// `{message}` from the ticket's owner or staff; the ticket's status follows whose turn
/// it is (`TicketStatus::after_message`).
#[utoipa::path(post, path = "/api/support/tickets/{ticket_id}/messages", tag = "support",
    summary = "Write to a ticket",
    description = "A staff reply makes the ticket `answered`, the customer writing again `open`.",
    params(("ticket_id" = Uuid, Path)),
    request_body = domain::TicketMessageRequest,
    responses(
        (status = 201, description = "The message", body = domain::Message),
        (status = 404, description = "ticket_not_found: no such ticket, or not the caller's", body = api::openapi::ErrorBody),
        (status = 409, description = "ticket_closed: a closed ticket takes no messages; \
            status_changed: the ticket changed meanwhile", body = api::openapi::ErrorBody),
    ))]
fn post_message(request: Request, params: Params) -> Result<Response, SupportError> {
    let caller = api::auth::caller(&request)?;
    let body = domain::parse_message(&read_json_object(&request)?)?;
    let id = ticket_id(&params)?;
    let db = Config::load()?.open_db()?;
    let message = api::db::transaction(&db, |db| -> Result<_, SupportError> {
        // The row lock makes concurrent messages and status changes to this ticket take
        // turns, so the status read here is still the status when the message is written.
        let ticket = visible(&caller, id, store::find_for_update(db, id)?)?;
        let next = ticket
            .status
            .after_message(caller.role)
            .map_err(|_| SupportError::TicketClosed(id))?;
        let message = store::insert_message(db, id, &caller, &body)?;
        store::set_status(db, id, ticket.status, next)?.ok_or(SupportError::StatusChanged(id))?;
        Ok(message)
    })?;
    Ok(json_response(201, &message))
}

/// `{"status": ...}`: staff move a ticket `open → answered → closed`.
#[utoipa::path(patch, path = "/api/support/tickets/{ticket_id}/status", tag = "support",
    operation_id = "change_ticket_status",
    summary = "Change a ticket's status (staff only)",
    params(("ticket_id" = Uuid, Path)),
    request_body = domain::TicketStatusRequest,
    responses(
        (status = 200, description = "The ticket, changed", body = domain::Ticket),
        (status = 403, description = "staff_only: a customer asked", body = api::openapi::ErrorBody),
        (status = 404, description = "ticket_not_found: no such ticket, or not the caller's", body = api::openapi::ErrorBody),
        (status = 409, description = "illegal_status_change: not `open → answered → closed` \
            or `open → closed`; status_changed: the ticket changed meanwhile", body = api::openapi::ErrorBody),
    ))]
fn change_status(request: Request, params: Params) -> Result<Response, SupportError> {
    let caller = api::auth::caller(&request)?;
    let to = domain::parse_status_change(&read_json_object(&request)?)?;
    let id = ticket_id(&params)?;
    let db = Config::load()?.open_db()?;
    // Visibility first: a customer learns nothing about another user's ticket, not even
    // that only staff could change it.
    let ticket = visible(&caller, id, store::find(&db, id)?)?;
    caller.require_staff("change a ticket's status; write a message instead")?;
    ticket.status.transition(to)?;
    match store::set_status(&db, id, ticket.status, to)? {
        Some(changed) => Ok(json_response(200, &changed)),
        None => Err(SupportError::StatusChanged(id)),
    }
}

/// The `ticket_id` route parameter. An id that is not a UUID names no ticket: 404, like
/// an unknown one.
fn ticket_id(params: &Params) -> Result<Uuid, SupportError> {
    let raw_id = params.get("ticket_id").unwrap_or_default();
    Uuid::parse_str(raw_id).map_err(|_| SupportError::TicketNotFound(raw_id.to_owned()))
}

/// The ticket, if the caller may see it (its owner or staff). Another user's ticket answers
/// exactly like a missing one: its existence is not theirs to learn.
fn visible(caller: &Caller, id: Uuid, found: Option<Ticket>) -> Result<Ticket, SupportError> {
    match found {
        Some(ticket) if caller.may_access(ticket.user_id) => Ok(ticket),
        _ => Err(SupportError::TicketNotFound(id.to_string())),
    }
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in
    //! crates/detailing/tests/support.rs.

    use super::*;
    use serde_json::Value;

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::TicketRequest>(|body| {
            NewTicket::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::TicketMessageRequest>(|body| {
            domain::parse_message(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::TicketStatusRequest>(|body| {
            domain::parse_status_change(body).map(drop)
        });
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let ticket = "/api/support/tickets/{ticket_id}";
        let messages = format!("{ticket}/messages");
        let status = format!("{ticket}/status");
        for (path, method, code, schema) in [
            ("/api/support/tickets", "post", "201", "Conversation"),
            ("/api/support/tickets", "get", "200", "PageOf_Ticket"),
            (ticket, "get", "200", "Conversation"),
            (&messages, "post", "201", "Message"),
            (&status, "patch", "200", "Ticket"),
        ] {
            let response = &doc["paths"][path][method]["responses"][code];
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{schema}"),
                "{method} {path}"
            );
        }
        assert!(doc["paths"][&status]["patch"]["responses"]["403"].is_object());
        assert!(doc["paths"]["/api/support/health/live"]["get"].is_object());
        assert!(doc["components"]["schemas"]["TicketRequest"].is_object());
    }

    #[test]
    fn the_documented_role_is_the_one_serialized() {
        let role = &serde_json::to_value(openapi()).unwrap()["components"]["schemas"]["Role"];
        let names: Vec<Value> = [api::auth::Role::Customer, api::auth::Role::Staff]
            .iter()
            .map(|role| serde_json::to_value(role).unwrap())
            .collect();
        assert_eq!(role["enum"], Value::from(names));
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
