//! The Tauri commands, expanded from the one list in `clinic_desk_core::ipc`: each
//! takes the running `DeskApp` and its arguments and runs the list's one call on
//! it, behind the access the list names (`gated!`: the role table decides), off
//! the async runtime unless it awaits; it returns the DTO or the
//! `{code, message}` error. No logic lives here.

use clinic_desk_core::{ApiError, DeskApp, ErrorCode};
use tauri::State;
use tauri::ipc::Channel;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("command panicked: {e}")))?
}

macro_rules! tauri_commands {
    ($( $(#[doc = $doc:literal])* $kind:ident fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $access:ident |$app:ident| $body:expr ; )*) => {
        $( tauri_command!($kind [$($doc)*] $name ($($arg: $ty),*) -> $ret = |$app| clinic_desk_core::gated!($access, $app, $body)); )*

        /// Registers every command of the list.
        pub fn register(builder: tauri::Builder<tauri::Wry>) -> tauri::Builder<tauri::Wry> {
            builder.invoke_handler(tauri::generate_handler![$($name),*])
        }
    };
}

macro_rules! tauri_command {
    (blocking [$($doc:literal)*] $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty = |$app:ident| $body:expr) => {
        $(#[doc = $doc])*
        #[tauri::command]
        async fn $name(state: State<'_, DeskApp>, $($arg: $ty),*) -> Result<$ret, ApiError> {
            let $app = state.inner().clone();
            blocking(move || {
                let $app = &$app;
                $body
            })
            .await
        }
    };
    (async [$($doc:literal)*] $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty = |$app:ident| $body:expr) => {
        $(#[doc = $doc])*
        #[tauri::command]
        async fn $name(state: State<'_, DeskApp>, $($arg: $ty),*) -> Result<$ret, ApiError> {
            let $app = state.inner();
            $body
        }
    };
    (stream [$($doc:literal)*] $name:ident ($arg:ident: $ty:ty) -> $ret:ty = |$app:ident| $body:expr) => {
        $(#[doc = $doc])*
        #[tauri::command]
        async fn $name(state: State<'_, DeskApp>, $arg: Channel<$ty>) -> Result<$ret, ApiError> {
            let $app = state.inner().clone();
            let $arg = move |message: $ty| $arg.send(message).is_ok();
            blocking(move || {
                let $app = &$app;
                $body
            })
            .await
        }
    };
}

clinic_desk_core::with_commands!(tauri_commands);
