//! The exporter itself (cargo feature `otlp`): the OpenTelemetry SDK's batch processor, the
//! OTLP/HTTP protobuf exporter over reqwest's blocking client, and the layer that feeds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use super::{ExportError, SERVICE_NAME, Settings, SpanLayer};

/// A running exporter.
pub(super) struct Running {
    provider: SdkTracerProvider,
    health: Arc<Health>,
    timeout: Duration,
}

impl Running {
    /// The collector's endpoint, without credentials.
    pub(super) fn endpoint(&self) -> &str {
        &self.health.endpoint
    }

    /// Sends what is queued, waiting at most one export's timeout, and stops.
    pub(super) fn shutdown(self) {
        match self.provider.shutdown_with_timeout(self.timeout) {
            Ok(()) | Err(OTelSdkError::AlreadyShutdown) => {}
            // Already said: the collector fails.
            Err(_) if self.health.failing.load(Ordering::SeqCst) => {}
            Err(e) => {
                tracing::warn!(endpoint = %self.health.endpoint, error = %e, "the last traces did not reach the collector before exit")
            }
        }
    }
}

/// Starts the exporter `settings` describe, and the layer that feeds it plancd's spans.
pub(super) fn start<S>(settings: &Settings) -> Result<(Running, SpanLayer<S>), ExportError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    // The exporter's words may quote the endpoint as given, credentials and all.
    let build = |why: String| ExportError::Build { endpoint: settings.shown_endpoint(), why: crate::remote::redact_url(&why) };
    let health = Arc::new(Health { endpoint: settings.shown_endpoint(), failing: AtomicBool::new(false) });
    let client = blocking_client(settings.timeout).map_err(build)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .build()
        .map_err(|e| build(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Watched { inner: exporter, health: health.clone() })
        .with_resource(resource(settings))
        .build();
    let scope = opentelemetry::InstrumentationScope::builder("plancd").with_version(env!("CARGO_PKG_VERSION")).build();
    let targets = Targets::new()
        .with_target("plancd", tracing::Level::INFO)
        .with_target("plancd_sandbox", tracing::Level::INFO)
        .with_target("plancd_controller", tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer_with_scope(scope)).with_filter(targets).boxed();
    Ok((Running { provider, health, timeout: settings.timeout }, layer))
}

/// The resource every span belongs to: the SDK's (which reads `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`), with plancd's name and version where those do not say.
fn resource(settings: &Settings) -> Resource {
    let mut builder = Resource::builder();
    if !settings.service_named {
        builder = builder.with_service_name(SERVICE_NAME);
    }
    if !settings.version_named {
        builder = builder.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// reqwest's blocking client: the SDK exports from a thread of its own, outside any async
/// runtime. Built on a thread of its own too, as reqwest requires outside a runtime.
fn blocking_client(timeout: Duration) -> Result<SensitiveHeaders, String> {
    // reqwest is built without a default TLS provider: ring is the one plancd links.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let build = move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("plancd/", env!("CARGO_PKG_VERSION")))
            .build()
    };
    let client = std::thread::spawn(build).join().map_err(|_| "building the HTTP client panicked".to_owned())?;
    client.map(SensitiveHeaders).map_err(|e| e.to_string())
}

/// The HTTP client the exporter sends with: before a request leaves, every header but the
/// content's type and encoding is marked sensitive, so no log or `Debug` of the request shows
/// the values of `OTEL_EXPORTER_OTLP_HEADERS` (an authorization token, say).
#[derive(Debug)]
struct SensitiveHeaders(reqwest::blocking::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for SensitiveHeaders {
    async fn send_bytes(
        &self,
        mut request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<opentelemetry_http::Response<opentelemetry_http::Bytes>, opentelemetry_http::HttpError> {
        for (name, value) in request.headers_mut().iter_mut() {
            if !matches!(name.as_str(), "content-type" | "content-encoding") {
                value.set_sensitive(true);
            }
        }
        self.0.send_bytes(request).await
    }
}

/// Whether the collector takes the batches, shared by the exporter and the exit.
struct Health {
    endpoint: String,
    failing: AtomicBool,
}

/// What is worth a log line when a batch was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// The first failure after batches got through (or the very first batch failed).
    Failing,
    /// A batch got through after failures.
    Recovered,
}

/// The notice for a batch's outcome, given whether the one before it failed: one line per
/// change, not one per batch of an outage.
fn notice(was_failing: bool, ok: bool) -> Option<Notice> {
    match (was_failing, ok) {
        (false, false) => Some(Notice::Failing),
        (true, true) => Some(Notice::Recovered),
        _ => None,
    }
}

/// The OTLP exporter, its failures logged as [`notice`] says. The SDK only drops a batch that
/// failed (its own logs are not built in), so this is the one place a failure is told.
struct Watched<E> {
    inner: E,
    health: Arc<Health>,
}

impl<E> std::fmt::Debug for Watched<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inner exporter's Debug shows its headers' values: never printed.
        f.debug_struct("Watched").field("endpoint", &self.health.endpoint).finish_non_exhaustive()
    }
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        let was_failing = self.health.failing.swap(result.is_err(), Ordering::SeqCst);
        match (notice(was_failing, result.is_ok()), &result) {
            (Some(Notice::Failing), Err(e)) => tracing::warn!(
                endpoint = %self.health.endpoint,
                error = %e,
                "cannot send traces to the collector; plancd goes on without them (logged again only after it takes them)"
            ),
            (Some(Notice::Recovered), _) => tracing::info!(endpoint = %self.health.endpoint, "traces reach the collector again"),
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::telemetry::otlp::TraceExport;

    #[test]
    fn a_collectors_failure_is_logged_once_per_outage() {
        let rows = [
            ("batches get through: nothing to say", false, true, None),
            ("the first failure is logged", false, false, Some(Notice::Failing)),
            ("later failures of the same outage are not", true, false, None),
            ("the first batch through after it is", true, true, Some(Notice::Recovered)),
        ];
        for (name, was_failing, ok, want) in rows {
            assert_eq!(notice(was_failing, ok), want, "{name}");
        }
    }

    #[test]
    fn a_running_exporter_shows_its_endpoint_only() {
        // The exporter reads OTEL_EXPORTER_OTLP_HEADERS from the process; a header set through
        // the builder would be held the same way. Its Debug is plancd's, showing the endpoint.
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:sekrit@127.0.0.1:9/")]);
        let (export, layer) = TraceExport::from_env::<tracing_subscriber::Registry>(&env).unwrap();
        assert!(layer.is_some());
        assert_eq!(format!("{export:?}"), r#"TraceExport { endpoint: Some("http://***@127.0.0.1:9/v1/traces") }"#);
        export.shutdown();
    }
}
