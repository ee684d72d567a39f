//! Traces to an OpenTelemetry collector: the pass, attempt and step spans sent over OTLP/HTTP
//! (protobuf) when the standard `OTEL_*` environment variables name a collector.
//!
//! Nothing is built or sent unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The exporter is built with the cargo feature `otlp`;
//! without it, a named collector gets a warning that this plancd cannot send to it. A collector
//! that cannot be reached or refuses a batch is logged once (again only after it took one) and
//! never fails a command; at exit the spans still queued get one export's timeout
//! (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default) to leave, and plancd ends then whatever the
//! collector does.

use std::time::Duration;

use tracing_subscriber::registry::LookupSpan;

use crate::config::Env;

#[cfg(feature = "otlp")]
mod sdk;

/// The service name spans carry when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES`
/// names one.
pub const SERVICE_NAME: &str = "plancd";

/// How long one export may take, and so how long a command waits at exit for its last spans,
/// when `OTEL_EXPORTER_OTLP_TIMEOUT` does not say (the specification's default).
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether and where traces go, as the environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No collector is named: nothing is exported.
    NotConfigured,
    /// A collector is named but `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    Disabled,
    /// A variable asks for something plancd does not send (gRPC, JSON, another exporter).
    Unsupported {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// Export to a collector.
    Export(Settings),
}

/// Where and how spans are sent. Holds no header: the exporter reads
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` or `OTEL_EXPORTER_OTLP_HEADERS` from the process itself,
/// and plancd never keeps or prints their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The URL spans are posted to (`.../v1/traces`).
    pub endpoint: String,
    /// How long one export may take, and the exit waits for the last.
    pub timeout: Duration,
    /// Whether the environment names the service; if not, it is [`SERVICE_NAME`].
    pub service_named: bool,
    /// Whether `OTEL_RESOURCE_ATTRIBUTES` sets `service.version`; if not, it is plancd's.
    pub version_named: bool,
}

impl Settings {
    /// The endpoint without credentials or query, for logs.
    pub fn shown_endpoint(&self) -> String {
        shown(&self.endpoint)
    }
}

/// Reads the OpenTelemetry variables: a signal's own variable wins over the general one, and an
/// empty value counts as unset.
pub fn decide(env: &Env) -> Decision {
    let var = |name: &str| env.get(name).map(str::trim).filter(|v| !v.is_empty());
    let endpoint = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        (Some(traces), _) => traces.to_owned(),
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Decision::NotConfigured,
    };
    let off = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if off || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return Decision::Disabled;
    }
    if let Some(value) = var("OTEL_TRACES_EXPORTER").filter(|v| !v.eq_ignore_ascii_case("otlp")) {
        return Decision::Unsupported { var: "OTEL_TRACES_EXPORTER", value: value.to_owned() };
    }
    for protocol in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(value) = var(protocol) {
            if value != "http/protobuf" {
                return Decision::Unsupported { var: protocol, value: value.to_owned() };
            }
            break;
        }
    }
    let millis = ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"].iter().find_map(|v| var(v)?.parse::<u64>().ok());
    let resource_keys: Vec<&str> = var("OTEL_RESOURCE_ATTRIBUTES")
        .map(|attrs| attrs.split(',').filter_map(|kv| Some(kv.split_once('=')?.0.trim())).collect())
        .unwrap_or_default();
    Decision::Export(Settings {
        endpoint,
        timeout: millis.map_or(EXPORT_TIMEOUT, Duration::from_millis),
        service_named: var("OTEL_SERVICE_NAME").is_some() || resource_keys.contains(&"service.name"),
        version_named: resource_keys.contains(&"service.version"),
    })
}

/// `url` without user, password or query, which may hold credentials.
fn shown(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    crate::remote::redact_url(without_query)
}

/// The layer that turns spans into OpenTelemetry spans: plancd's own spans and the events
/// inside them (info and above, whatever the log level on stderr is).
pub type SpanLayer<S> = Box<dyn tracing_subscriber::Layer<S> + Send + Sync>;

/// The trace exporter of this process, when one runs: [`TraceExport::shutdown`] sends what is
/// still queued before the process ends.
#[must_use = "spans still queued are lost unless it is shut down"]
pub struct TraceExport {
    #[cfg(feature = "otlp")]
    running: Option<sdk::Running>,
}

impl std::fmt::Debug for TraceExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The exporter holds the collector's headers: only the endpoint is shown.
        f.debug_struct("TraceExport").field("endpoint", &self.endpoint()).finish()
    }
}

/// Why traces are not exported although the environment asked for them.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A variable asks for something plancd does not send.
    #[error("{var}={value} is not supported: plancd sends traces over OTLP/HTTP with protobuf (http/protobuf)")]
    Unsupported {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// This plancd was built without the exporter.
    #[error("a collector is named ({endpoint}) but this plancd was built without the `otlp` feature")]
    NotBuilt {
        /// The endpoint, without credentials.
        endpoint: String,
    },
    /// The exporter could not be built (a malformed endpoint, say).
    #[error("cannot set up the trace exporter for {endpoint}: {why}")]
    Build {
        /// The endpoint, without credentials.
        endpoint: String,
        /// The exporter's words.
        why: String,
    },
}

impl TraceExport {
    /// No exporter: spans stay in this process.
    pub fn none() -> TraceExport {
        TraceExport {
            #[cfg(feature = "otlp")]
            running: None,
        }
    }

    /// The exporter the environment asks for, with the layer that feeds it; `Ok` with no layer
    /// when none is asked for. Call it before any async runtime starts (it builds a blocking
    /// HTTP client).
    pub fn from_env<S>(env: &Env) -> Result<(TraceExport, Option<SpanLayer<S>>), ExportError>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        match decide(env) {
            Decision::NotConfigured | Decision::Disabled => Ok((TraceExport::none(), None)),
            Decision::Unsupported { var, value } => Err(ExportError::Unsupported { var, value }),
            #[cfg(feature = "otlp")]
            Decision::Export(settings) => {
                let (running, layer) = sdk::start(&settings)?;
                Ok((TraceExport { running: Some(running) }, Some(layer)))
            }
            #[cfg(not(feature = "otlp"))]
            Decision::Export(settings) => Err(ExportError::NotBuilt { endpoint: settings.shown_endpoint() }),
        }
    }

    /// The collector's endpoint (without credentials), when traces are exported.
    pub fn endpoint(&self) -> Option<&str> {
        #[cfg(feature = "otlp")]
        return self.running.as_ref().map(sdk::Running::endpoint);
        #[cfg(not(feature = "otlp"))]
        None
    }

    /// Sends the spans still queued and stops the exporter, waiting at most one export's
    /// timeout; a collector that does not take them in time is logged (unless its failure
    /// already was), never an error.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(running) = self.running {
            running.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: &str) -> Decision {
        Decision::Export(Settings { endpoint: endpoint.into(), timeout: EXPORT_TIMEOUT, service_named: false, version_named: false })
    }

    #[test]
    fn the_environment_decides_whether_and_where_traces_go() {
        let base = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let traces = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        let unsupported = |var, value: &str| Decision::Unsupported { var, value: value.into() };
        type Row = (&'static str, Vec<(&'static str, &'static str)>, Decision);
        let rows: [Row; 12] = [
            ("nothing set: nothing exported", vec![], Decision::NotConfigured),
            ("an empty endpoint is unset", vec![(base, " ")], Decision::NotConfigured),
            ("other OTEL variables alone export nothing", vec![("OTEL_SERVICE_NAME", "x")], Decision::NotConfigured),
            ("the general endpoint gets the traces path", vec![(base, "http://c:4318")], settings("http://c:4318/v1/traces")),
            ("a trailing slash is not doubled", vec![(base, "http://c:4318/")], settings("http://c:4318/v1/traces")),
            ("the signal's endpoint is used as it is", vec![(traces, "http://c/t")], settings("http://c/t")),
            ("the signal's endpoint wins", vec![(base, "http://a"), (traces, "http://b/t")], settings("http://b/t")),
            ("OTEL_SDK_DISABLED turns it off", vec![(base, "http://c"), ("OTEL_SDK_DISABLED", "TRUE")], Decision::Disabled),
            ("OTEL_TRACES_EXPORTER=none turns it off", vec![(base, "http://c"), ("OTEL_TRACES_EXPORTER", "none")], Decision::Disabled),
            (
                "another exporter is not sent",
                vec![(base, "http://c"), ("OTEL_TRACES_EXPORTER", "zipkin")],
                unsupported("OTEL_TRACES_EXPORTER", "zipkin"),
            ),
            (
                "gRPC is not spoken",
                vec![(base, "http://c"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                unsupported("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ),
            (
                "the signal's protocol wins",
                vec![(base, "http://c"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")],
                settings("http://c/v1/traces"),
            ),
        ];
        for (name, vars, want) in rows {
            assert_eq!(decide(&Env::from_pairs(vars)), want, "{name}");
        }
    }

    #[test]
    fn service_name_version_and_timeout_come_from_the_environment_when_it_names_them() {
        let export =
            |vars: Vec<(&str, &str)>| match decide(&Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c")].into_iter().chain(vars)))
            {
                Decision::Export(s) => (s.service_named, s.version_named, s.timeout),
                other => panic!("{other:?}"),
            };
        type Row = (&'static str, Vec<(&'static str, &'static str)>, (bool, bool, Duration));
        let rows: [Row; 5] = [
            ("plancd's name and version by default", vec![], (false, false, EXPORT_TIMEOUT)),
            ("OTEL_SERVICE_NAME names it", vec![("OTEL_SERVICE_NAME", "ci")], (true, false, EXPORT_TIMEOUT)),
            (
                "resource attributes name both",
                vec![("OTEL_RESOURCE_ATTRIBUTES", "team=x, service.name=ci,service.version=7")],
                (true, true, EXPORT_TIMEOUT),
            ),
            (
                "the general timeout, in milliseconds",
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")],
                (false, false, Duration::from_millis(2500)),
            ),
            (
                "the signal's timeout wins; a bad one is skipped",
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"), ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon")],
                (false, false, Duration::from_millis(2500)),
            ),
        ];
        for (name, vars, want) in rows {
            assert_eq!(export(vars), want, "{name}");
        }
    }

    #[test]
    fn an_endpoint_is_shown_without_credentials_or_query() {
        let rows = [
            ("http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"),
            ("https://user:pass@otel.example/v1/traces", "https://***@otel.example/v1/traces"),
            ("https://otel.example/v1/traces?api_key=abc", "https://otel.example/v1/traces"),
        ];
        for (url, want) in rows {
            assert_eq!(shown(url), want, "{url}");
        }
    }

    #[test]
    fn no_exporter_is_built_when_no_collector_is_named() {
        let (export, layer) =
            TraceExport::from_env::<tracing_subscriber::Registry>(&Env::from_pairs([("OTEL_SERVICE_NAME", "x")])).unwrap();
        assert!(layer.is_none() && export.endpoint().is_none());
        export.shutdown();
    }
}
