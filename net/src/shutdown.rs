//! How the worker and the server binaries know to shut down: SIGTERM or Ctrl-C.

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first awaited: call it before announcing the listening address, so a signal sent as
/// soon as the process says it listens is a clean shutdown, not the default action (the process
/// killed mid-start).
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
