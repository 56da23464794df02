//! axum's extractors with their rejections turned into [`ApiError`]s, so that a malformed
//! body, path or query string gets the same JSON error shape as everything else, naming
//! what was wrong and keeping axum's status (400, 413, 415, 422).

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

/// A `multipart/form-data` body.
pub struct MultipartBody(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for MultipartBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Multipart::from_request(request, state)
            .await
            .map(MultipartBody)
            .map_err(|rejection: MultipartRejection| rejected("multipart body", rejection))
    }
}

/// Path parameters.
pub struct PathParam<T>(pub T);

/// The query string.
pub struct QueryParams<T>(pub T);

fn rejected(what: &str, rejection: impl IntoResponse + std::fmt::Display) -> ApiError {
    let why = rejection.to_string();
    let status = rejection.into_response().status();
    ApiError::Request {
        status,
        what: what.to_owned(),
        why,
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| JsonBody(value))
            .map_err(|rejection: JsonRejection| rejected("JSON body", rejection))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParam(value))
            .map_err(|rejection: PathRejection| rejected("path", rejection))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection: QueryRejection| rejected("query string", rejection))
    }
}
