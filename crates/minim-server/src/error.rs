//! `ApiError` and the one place where errors become HTTP status codes and JSON bodies.
//!
//! Bad input is a 4xx with a stable `code`; retryable conditions are 503 with
//! `Retry-After`; 5xx bodies never carry internals (the log does).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minim_ingest::DecodeError;
use minim_query::SpecError;
use minim_query::engine::QueryError;
use minim_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, unknown or revoked credentials; never says which.
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{code}: {message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{code}: {message}")]
    PayloadTooLarge { code: &'static str, message: String },
    #[error("unsupported content encoding: {0}")]
    UnsupportedEncoding(String),
    #[error("request body not received in time")]
    RequestTimeout,
    #[error("not found")]
    NotFound,
    /// Valid credentials that may not do this (wrong project or role).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A query spec was refused; names the field.
    #[error(transparent)]
    InvalidSpec(SpecError),
    /// A query was refused or could not finish within its limits.
    #[error(transparent)]
    Query(QueryError),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too much work in flight; retry.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// Cannot write durably right now; retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Authenticated but refused, with a specific code (`forbidden`, `step_up_required`,
    /// `mfa_enrollment_required`, `principal_suspended`, `csrf_failed`, ...).
    #[error("{code}: {message}")]
    Denied { code: &'static str, message: String },
    /// A read budget would be crossed; nothing was returned.
    #[error("read budget exceeded: {0}")]
    BudgetExceeded(String),
    /// Too many attempts (login lockout); retry after the given seconds.
    #[error("{code}: {message}")]
    TooManyAttempts {
        code: &'static str,
        message: String,
        retry_after_s: u64,
    },
    /// The request conflicts with the current state (e.g. an export already decided).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    /// The audit record of the request could not be written, so it is refused.
    #[error("audit log unavailable")]
    AuditUnavailable,
    /// A bug or an unexpected failure; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Retry-After seconds for retryable errors.
    pub const RETRY_AFTER_S: u32 = 1;

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid credentials".into(),
            ),
            ApiError::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {limit} bytes"),
            ),
            ApiError::PayloadTooLarge { code, message } => {
                (StatusCode::PAYLOAD_TOO_LARGE, code, message.clone())
            }
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message.clone())
            }
            ApiError::UnsupportedEncoding(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                message.clone(),
            ),
            ApiError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time".into(),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "no such route".into()),
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", (*why).into()),
            ApiError::InvalidSpec(e) => (StatusCode::BAD_REQUEST, e.code(), e.message().into()),
            ApiError::Query(e) => query_parts(e),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route".into(),
            ),
            ApiError::Overloaded(what) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                format!("server is overloaded ({what}); retry later"),
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "server cannot store data durably right now; retry later".into(),
            ),
            ApiError::Denied { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            ApiError::BudgetExceeded(what) => (
                StatusCode::TOO_MANY_REQUESTS,
                "budget_exceeded",
                format!(
                    "read budget exceeded ({what}); nothing was returned and admins were alerted"
                ),
            ),
            ApiError::TooManyAttempts { code, message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, code, message.clone())
            }
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            ApiError::AuditUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log cannot be written, so the request was refused; retry later".into(),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; see the server log".into(),
            ),
        }
    }
}

/// The error code of an error response, for the audit record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCode(pub &'static str);

/// Status, code and message of a query failure: the client's fault is 4xx, a limit
/// that a retry may pass (busy, timeout) is 503, a bug is 500 without details.
fn query_parts(e: &QueryError) -> (StatusCode, &'static str, String) {
    let (status, code) = match e {
        QueryError::Spec(s) => return (StatusCode::BAD_REQUEST, s.code(), s.message().into()),
        QueryError::InvalidSql(_) => (StatusCode::BAD_REQUEST, "invalid_sql"),
        QueryError::SqlNotAllowed(_) => (StatusCode::BAD_REQUEST, "sql_not_allowed"),
        QueryError::TooManyRows { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_rows"),
        QueryError::MemoryExceeded { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "query_memory_exceeded")
        }
        QueryError::Timeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "query_timeout"),
        QueryError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        QueryError::Internal(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; see the server log".into(),
            );
        }
    };
    (status, code, e.to_string())
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Spec(s) => ApiError::InvalidSpec(s),
            other => ApiError::Query(other),
        }
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        ApiError::InvalidSpec(e)
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::BodyTooLarge { .. } | DecodeError::TooManyEvents { .. } => {
                ApiError::PayloadTooLarge {
                    code: e.code(),
                    message: e.to_string(),
                }
            }
            DecodeError::UnsupportedEncoding(_) => ApiError::UnsupportedEncoding(e.to_string()),
            other => ApiError::BadRequest {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Overloaded => ApiError::Overloaded("write queue full"),
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::ShuttingDown => ApiError::Unavailable("shutting down".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        match &self {
            ApiError::Internal(detail) => tracing::error!(detail = %detail, "internal error"),
            ApiError::Query(QueryError::Internal(detail)) => {
                tracing::error!(detail = %detail, "query failed")
            }
            ApiError::Query(
                e @ (QueryError::Timeout { .. } | QueryError::MemoryExceeded { .. }),
            ) => {
                tracing::warn!(error = %e, "query stopped at a limit")
            }
            ApiError::Unavailable(detail) => tracing::warn!(detail = %detail, "refusing writes"),
            _ => {}
        }
        let mut error = serde_json::json!({ "code": code, "message": message });
        let field = match &self {
            ApiError::InvalidSpec(e) | ApiError::Query(QueryError::Spec(e)) => Some(e.field()),
            _ => None,
        };
        if let (Some(field), Some(obj)) = (field, error.as_object_mut()) {
            obj.insert("field".into(), field.into());
        }
        let body = serde_json::json!({ "error": error });
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(ApiError::RETRY_AFTER_S),
            );
        }
        if let ApiError::TooManyAttempts { retry_after_s, .. } = &self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        resp.extensions_mut().insert(ErrorCode(code));
        resp
    }
}
