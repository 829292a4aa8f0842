//! Outbound Redis for guests: `fermyon:spin/redis@2.0.0` connections, checked against
//! `allowed_outbound_hosts` (`redis://host:port`), sharing one multiplexed client per address.
//! Connecting and each command are bounded ([`REDIS_CONNECT_TIMEOUT`],
//! [`REDIS_RESPONSE_TIMEOUT`]); a shared client that fails as a connection is dropped, so the
//! next guest connects afresh once Redis is back. The inbound side, `[[trigger.redis]]`, is
//! `redis_trigger`.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Result;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, RedisResult, Value};
use wasmtime::component::Resource;

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::fermyon::spin2_0_0::redis as outbound;
use crate::limits::{REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT};
use crate::state::InstanceState;

/// A guest's open connection: a handle on the shared multiplexed client.
pub struct RedisConnection {
    conn: MultiplexedConnection,
    address: String,
}

/// One multiplexed client per address, shared by every instance.
#[derive(Default)]
pub struct RedisClients {
    clients: Mutex<HashMap<String, MultiplexedConnection>>,
}

impl RedisClients {
    async fn connection(&self, address: &str) -> Result<MultiplexedConnection, outbound::Error> {
        if let Some(conn) = self
            .clients
            .lock()
            .expect("redis clients lock")
            .get(address)
        {
            return Ok(conn.clone());
        }
        let client = redis::Client::open(address).map_err(|_| outbound::Error::InvalidAddress)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(other)?;
        self.clients
            .lock()
            .expect("redis clients lock")
            .insert(address.to_owned(), conn.clone());
        Ok(conn)
    }

    /// `result` as it is; when it failed as a connection fails (reset, refused, timed out),
    /// the shared client of `address` is dropped first: a multiplexed connection does not
    /// reconnect by itself, and the next guest would get the same dead one.
    fn checked<T>(&self, address: &str, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(error) = &result {
            if error.is_unrecoverable_error() || error.is_timeout() || error.is_io_error() {
                tracing::warn!("redis connection to {address} dropped: {error}");
                self.clients
                    .lock()
                    .expect("redis clients lock")
                    .remove(address);
            }
        }
        result
    }
}

fn other(error: redis::RedisError) -> outbound::Error {
    outbound::Error::Other(error.to_string())
}

/// `redis://[user:pass@]host[:port][/db]` must be in `allowed_outbound_hosts`.
fn check_allowed(allowed: &AllowedHosts, address: &str) -> Result<(), outbound::Error> {
    let info: redis::ConnectionInfo = address
        .parse()
        .map_err(|_| outbound::Error::InvalidAddress)?;
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        _ => return Err(outbound::Error::InvalidAddress),
    };
    if allowed.allows("redis", &host, port) {
        Ok(())
    } else {
        tracing::error!(
            "a component tried to connect to redis://{host}:{port}, which is not allowed: \
             add \"redis://{host}:{port}\" to its allowed_outbound_hosts"
        );
        Err(outbound::Error::Other(format!(
            "destination redis://{host}:{port} is not in allowed_outbound_hosts"
        )))
    }
}

impl outbound::Host for InstanceState {}

impl InstanceState {
    /// A guest connection's shared client (a cheap handle) and its address.
    fn redis_connection(
        &mut self,
        conn: &Resource<RedisConnection>,
    ) -> wasmtime::Result<(MultiplexedConnection, String)> {
        let conn = self.table.get(conn)?;
        Ok((conn.conn.clone(), conn.address.clone()))
    }
}

/// The trigger's shared types carry no functions; guests exporting `inbound-redis` import them.
impl crate::bindings::redis_guest::fermyon::spin::redis_types::Host for InstanceState {}

impl outbound::HostConnection for InstanceState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, outbound::Error>> {
        if let Err(error) = check_allowed(&self.component.allowed_hosts, &address) {
            return Ok(Err(error));
        }
        match self.redis.connection(&address).await {
            Ok(conn) => Ok(Ok(self.table.push(RedisConnection { conn, address })?)),
            Err(error) => Ok(Err(error)),
        }
    }

    async fn publish(
        &mut self,
        conn: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.publish::<_, _, ()>(channel, payload).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn get(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.get(key).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn set(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.set(key, value).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn incr(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.incr(key, 1).await;
        Ok(self.redis.checked(&address, result).map_err(|error| {
            if error.kind() == redis::ErrorKind::UnexpectedReturnType {
                outbound::Error::TypeError
            } else {
                other(error)
            }
        }))
    }

    async fn del(
        &mut self,
        conn: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.del(keys).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn sadd(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.sadd(key, values).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn smembers(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.smembers(key).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn srem(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let result = conn.srem(key, values).await;
        Ok(self.redis.checked(&address, result).map_err(other))
    }

    async fn execute(
        &mut self,
        conn: Resource<RedisConnection>,
        command: String,
        arguments: Vec<outbound::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<outbound::RedisResult>, outbound::Error>> {
        let (mut conn, address) = self.redis_connection(&conn)?;
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                outbound::RedisParameter::Int64(n) => cmd.arg(n),
                outbound::RedisParameter::Binary(bytes) => cmd.arg(bytes),
            };
        }
        let result = cmd.query_async(&mut conn).await;
        let value: Value = match self.redis.checked(&address, result) {
            Ok(value) => value,
            Err(error) => return Ok(Err(other(error))),
        };
        Ok(results(value))
    }

    async fn drop(&mut self, conn: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// A reply as Spin hands it to guests: arrays are flattened one level, other shapes become
/// the nearest of nil / status / integer / bytes.
fn results(value: Value) -> Result<Vec<outbound::RedisResult>, outbound::Error> {
    match value {
        Value::Array(values) | Value::Set(values) => values.into_iter().map(result).collect(),
        single => Ok(vec![result(single)?]),
    }
}

fn result(value: Value) -> Result<outbound::RedisResult, outbound::Error> {
    Ok(match value {
        Value::Nil => outbound::RedisResult::Nil,
        Value::Int(n) => outbound::RedisResult::Int64(n),
        Value::BulkString(bytes) => outbound::RedisResult::Binary(bytes),
        Value::SimpleString(status) => outbound::RedisResult::Status(status),
        Value::Okay => outbound::RedisResult::Status("OK".into()),
        Value::VerbatimString { text, .. } => outbound::RedisResult::Binary(text.into_bytes()),
        Value::Double(x) => outbound::RedisResult::Binary(x.to_string().into_bytes()),
        Value::Boolean(b) => outbound::RedisResult::Int64(i64::from(b)),
        Value::ServerError(error) => {
            return Err(outbound::Error::Other(format!("{error:?}")));
        }
        _ => return Err(outbound::Error::TypeError),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_addresses_are_checked_against_allowed_hosts() {
        let allowed = AllowedHosts::parse(&["redis://127.0.0.1:6379"]).unwrap();
        assert!(check_allowed(&allowed, "redis://127.0.0.1:6379").is_ok());
        assert!(check_allowed(&allowed, "redis://127.0.0.1").is_ok());
        assert!(matches!(
            check_allowed(&allowed, "redis://10.0.0.1:6379"),
            Err(outbound::Error::Other(_))
        ));
        assert!(matches!(
            check_allowed(&allowed, "not a url"),
            Err(outbound::Error::InvalidAddress)
        ));
    }

    #[test]
    fn replies_map_to_spins_result_shapes() {
        let replies = results(Value::Array(vec![
            Value::Nil,
            Value::Int(3),
            Value::BulkString(b"x".to_vec()),
            Value::Okay,
        ]))
        .unwrap();
        assert_eq!(replies.len(), 4);
        assert!(matches!(replies[1], outbound::RedisResult::Int64(3)));
        assert!(matches!(&replies[3], outbound::RedisResult::Status(s) if s == "OK"));
    }
}
