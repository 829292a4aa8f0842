//! The plates the caller proves, from car-service: `GET {car_service_url}/api/cars/registrations`
//! (each of their cars' registration certificates with the car's plate) page by page with the
//! caller's token (`api::upstream`), so car-service's ownership rules decide. In one host that
//! is Spin service chaining (`http://car-service.spin.internal`, no TCP); on Kubernetes the car
//! SpinApp's Service URL. Fines-service never reads car-service's tables.

use std::collections::BTreeSet;

use api::query::Page;
use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use uuid::Uuid;

use crate::domain::{CertificateNumber, LicensePlate, ProvenPlate};

pub const CAR_SERVICE: Service = Service {
    name: "car-service",
    failed: "car_service_failed",
    unavailable: "car_service_unavailable",
    timeout: "car_service_timeout",
};

/// A bound on the walk: a car-service that keeps naming a next page fails the request
/// with 502 instead of looping until the deadline. 100 pages of 100 is 10 000 certificates.
const MAX_PAGES: usize = 100;

/// The plates with certificates of `owner`'s cars, asked as the caller (`authorization` is
/// their header).
pub async fn proven_plates_of(
    cars: &Upstream,
    owner: Uuid,
    authorization: Option<&str>,
) -> Result<BTreeSet<ProvenPlate>, ApiError> {
    let mut proven = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for pages in 1.. {
        let reply = cars
            .get(&page_path(owner, cursor.as_deref()), authorization)
            .await?;
        let page = interpret(&reply)?;
        proven.extend(page.proven);
        cursor = match page.next_cursor {
            None => break,
            Some(_) if pages == MAX_PAGES => {
                return Err(
                    reply.failed(format!("still more registrations after {MAX_PAGES} pages"))
                )
            }
            next => next,
        };
    }
    Ok(proven)
}

/// `owner_id` matters for staff only: car-service lists everyone's cars to staff unless
/// told whose, and ignores the filter for anyone else (they only ever see their own).
fn page_path(owner: Uuid, cursor: Option<&str>) -> String {
    let mut path = format!(
        "/api/cars/registrations?limit={}&owner_id={owner}",
        Page::MAX_LIMIT
    );
    if let Some(cursor) = cursor {
        path.push_str("&cursor=");
        path.push_str(&percent_encode(cursor));
    }
    path
}

/// Cursors are opaque, so nothing about their characters is assumed: everything but
/// RFC 3986's unreserved characters is escaped.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// One page of the caller's registration certificates, reduced to what fines need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationsPage {
    pub proven: Vec<ProvenPlate>,
    pub next_cursor: Option<String>,
}

/// Reads car-service's answer: 200 with `{"items":[registration...],"next_cursor":...}`.
/// Anything else is car-service failing (502): our request is well-formed by construction and
/// carries a token this component has just verified.
pub fn interpret(reply: &Reply) -> Result<RegistrationsPage, ApiError> {
    #[derive(serde::Deserialize)]
    struct Body {
        items: Vec<Registration>,
        next_cursor: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Registration {
        license_plate: String,
        certificate_number: String,
    }
    if reply.status != 200 {
        return Err(reply.unexpected());
    }
    let body: Body = reply.json()?;
    let proven = body
        .items
        .iter()
        .map(|item| {
            let plate = LicensePlate::parse(&item.license_plate)
                .map_err(|error| format!("answered a car with {error}"))?;
            let certificate =
                CertificateNumber::parse(&item.certificate_number).ok_or_else(|| {
                    format!(
                        "answered the certificate number {:?}, which is not in the stored form",
                        item.certificate_number
                    )
                })?;
            Ok(ProvenPlate { plate, certificate })
        })
        .collect::<Result<_, String>>()
        .map_err(|detail| reply.failed(detail))?;
    Ok(RegistrationsPage {
        proven,
        next_cursor: body.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            service: CAR_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_page_yields_its_proven_plates_and_the_next_cursor() {
        let body = r#"{"items":[
            {"car_id":"x","license_plate":"А123БВ799","certificate_number":"99 АА 123456",
             "document_id":"y","issued_at":"2021-05-01","created_at":"2026-01-01T00:00:00.000000Z"},
            {"license_plate":"К456МН178","certificate_number":"78 09 456178"}
        ],"next_cursor":"2026-01-01T00:00:00.000000Z~00000000-0000-0000-0000-00000000002a"}"#;
        let page = interpret(&reply(200, body)).unwrap();
        let proven: Vec<(&str, &str)> = page
            .proven
            .iter()
            .map(|p| (p.plate.as_str(), p.certificate.as_str()))
            .collect();
        assert_eq!(
            proven,
            [("А123БВ799", "99 АА 123456"), ("К456МН178", "78 09 456178")]
        );
        assert_eq!(
            page.next_cursor.as_deref(),
            Some("2026-01-01T00:00:00.000000Z~00000000-0000-0000-0000-00000000002a")
        );
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = interpret(&reply(200, r#"{"items":[],"next_cursor":null}"#)).unwrap();
        assert_eq!(
            page,
            RegistrationsPage {
                proven: Vec::new(),
                next_cursor: None
            }
        );
    }

    #[test]
    fn failures_and_unreadable_pages_are_bad_gateway() {
        for (status, body) in [
            (500, ""),
            (401, r#"{"error":{"code":"invalid_token"}}"#),
            (404, r#"{"error":{"code":"not_found"}}"#),
            (200, "<html>"),
            (200, "{}"),
            (200, r#"{"items":[{"id":"x"}]}"#),
            (200, r#"{"items":[{"license_plate":"А123БВ799"}]}"#),
            (
                200,
                r#"{"items":[{"license_plate":"","certificate_number":"99 АА 123456"}]}"#,
            ),
            (
                200,
                r#"{"items":[{"license_plate":"А123БВ799","certificate_number":"99АА123456"}]}"#,
            ),
        ] {
            let error = interpret(&reply(status, body)).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (502, "car_service_failed"),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn pages_ask_for_the_owners_registrations_and_escape_the_cursor() {
        let owner = Uuid::from_u128(42);
        assert_eq!(
            page_path(owner, None),
            "/api/cars/registrations?limit=100&owner_id=00000000-0000-0000-0000-00000000002a"
        );
        assert_eq!(
            page_path(owner, Some("2026-01-01T00:00:00Z~a+b&c")),
            "/api/cars/registrations?limit=100&owner_id=00000000-0000-0000-0000-00000000002a\
             &cursor=2026-01-01T00%3A00%3A00Z~a%2Bb%26c"
        );
    }
}
