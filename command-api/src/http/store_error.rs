//! Maps the event store's outcome to API errors: business rejections through a per-aggregate
//! mapping, contention to 503 (after the store's own retries), anything else to 500.

use plumbing::store::ExecuteError;

use super::error::ApiError;

pub fn from_execute<E: std::error::Error>(
    err: ExecuteError<E>,
    rejected: impl FnOnce(E) -> ApiError,
) -> ApiError {
    match err {
        ExecuteError::Rejected(e) => rejected(e),
        ExecuteError::Contended => {
            ApiError::Unavailable("the resource is busy; retry shortly".into())
        }
        ExecuteError::Store(e) => ApiError::internal(anyhow::Error::new(e)),
    }
}

/// A store failure outside `execute`: unreachable → 503 (with `Retry-After`), anything else
/// → 500.
pub fn from_persistence(err: cqrs_es::persist::PersistenceError) -> ApiError {
    match err {
        cqrs_es::persist::PersistenceError::ConnectionError(e) => {
            tracing::warn!(error = %e, "the event store is unreachable");
            ApiError::Unavailable("the event store is unreachable; retry shortly".into())
        }
        other => ApiError::internal(anyhow::Error::new(other)),
    }
}
