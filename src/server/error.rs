//! Errors as OpenAI clients expect them: the right HTTP status and a body
//! `{"error": {"message", "type", "param", "code"}}`, so an SDK raises its own exception type
//! (`BadRequestError`, `AuthenticationError`, `RateLimitError`, …) with folio's message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What can go wrong with a request; each kind has its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad JSON, bad base64, an image that does not decode, an absurd or unsupported parameter.
    #[error("{message}")]
    BadRequest { message: String, param: Option<&'static str> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    /// The body or an image is over the server's limits.
    #[error("{0}")]
    TooLarge(String),
    /// As many requests as the server admits are already in; retry later.
    #[error("the server is at capacity ({0} requests in progress): retry later")]
    QueueFull(usize),
    /// The model is still loading, or the server is stopping.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), param: None }
    }

    pub fn bad_param(param: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), param: Some(param) }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error's body, as OpenAI writes it.
    pub fn body(&self) -> serde_json::Value {
        let (kind, code) = match self {
            ApiError::BadRequest { .. } => ("invalid_request_error", None),
            ApiError::Unauthorized(_) => ("authentication_error", Some("invalid_api_key")),
            ApiError::NotFound(_) => ("invalid_request_error", Some("model_not_found")),
            ApiError::TooLarge(_) => ("invalid_request_error", Some("request_too_large")),
            ApiError::QueueFull(_) => ("rate_limit_error", Some("rate_limit_exceeded")),
            ApiError::Unavailable(_) => ("server_error", Some("service_unavailable")),
            ApiError::Internal(_) => ("server_error", None),
        };
        let param = match self {
            ApiError::BadRequest { param, .. } => *param,
            _ => None,
        };
        serde_json::json!({"error": {"message": self.to_string(), "type": kind, "param": param, "code": code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}
