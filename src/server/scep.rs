//! SCEP (RFC 8894) over HTTP and HTTPS: the protocol crate decodes and builds CertReps, the
//! registrar decides, the store answers polls, GetCert and GetCRL.

use std::sync::Arc;

use enrollgate_model::{Outcome, RejectReason};
use enrollgate_scep::{
    CertRepPayload, DecodeOptions, FailInfo, HttpReply, PkiRequest, RaIdentity, RequestContent,
    ScepHttpRequest,
};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::{AppState, Body, ConnInfo, read_body, text};

/// The route label if `path` is a SCEP path: `/scep`, `/scep/<label>`, `/cgi-bin/pkiclient.exe`
/// (and `/scep/<label>/pkiclient.exe`, which some clients append).
pub fn route_label(path: &str) -> Option<&str> {
    if path == "/cgi-bin/pkiclient.exe" || path == "/scep" || path == "/scep/" {
        return Some("");
    }
    let rest = path.strip_prefix("/scep/")?;
    let label = rest
        .strip_suffix("/pkiclient.exe")
        .unwrap_or(rest)
        .trim_end_matches('/');
    (!label.contains('/')).then_some(label)
}

/// Answers one SCEP request.
pub async fn handle(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    label: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    if state.registrar.route(label).is_none() {
        state
            .metrics
            .bad_input
            .with_label_values(&["scep", "unknown_route"])
            .inc();
        return text(StatusCode::NOT_FOUND, "unknown route");
    }
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body = match read_body(state, req.into_body()).await {
        Ok(b) => b,
        Err(response) => {
            state
                .metrics
                .bad_input
                .with_label_values(&["scep", "body"])
                .inc();
            return *response;
        }
    };
    let parsed = match enrollgate_scep::parse_http_request(&method, &query, &body) {
        Ok(p) => p,
        Err(e) => {
            state
                .metrics
                .bad_input
                .with_label_values(&["scep", "http"])
                .inc();
            tracing::debug!(error = %e, "SCEP request refused");
            return text(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let Some(ra) = state.scep_ra.as_ref() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "SCEP RA identity unavailable",
        );
    };
    match parsed {
        ScepHttpRequest::GetCaCaps { .. } => reply(enrollgate_scep::ca_caps(false)),
        ScepHttpRequest::GetCaCert { .. } => {
            let chain = state.registrar.ca_chain(label);
            match enrollgate_scep::ca_cert_reply(Some(ra.certificate_der()), &chain) {
                Ok(r) => reply(r),
                Err(e) => internal(&e),
            }
        }
        ScepHttpRequest::GetNextCaCert { .. } => {
            text(StatusCode::NOT_FOUND, "no CA rollover is scheduled")
        }
        ScepHttpRequest::PkiOperation(der) => pki_operation(state, conn, label, ra, &der).await,
    }
}

async fn pki_operation(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    label: &str,
    ra: &RaIdentity,
    der: &[u8],
) -> Response<Body> {
    let request = match enrollgate_scep::decode_pki_message(der, ra, &DecodeOptions::default()) {
        Ok(r) => r,
        Err(failure) => {
            state
                .metrics
                .bad_input
                .with_label_values(&["scep", failure.error.fail_info().name()])
                .inc();
            tracing::debug!(error = %failure.error, "SCEP message refused");
            return match failure.reply {
                Some(r) => {
                    let text_reason = failure.error.to_string();
                    cert_rep(enrollgate_scep::cert_rep_failure(
                        ra,
                        &r.reply_to,
                        r.fail_info,
                        Some(&text_reason),
                        &mut rng,
                    ))
                }
                None => text(StatusCode::BAD_REQUEST, &failure.error.to_string()),
            };
        }
    };
    let outcome = match &request.content {
        RequestContent::PkcsReq { .. } | RequestContent::RenewalReq { .. } => {
            let peer = conn.peer.map(|p| p.to_string());
            match enrollgate_scep::issuance_request(&request, label, peer) {
                Ok(issuance) => state.registrar.issue(issuance).await,
                Err(e) => Outcome::Rejected(RejectReason::Malformed(e.to_string())),
            }
        }
        RequestContent::CertPoll(_) => {
            state
                .registrar
                .poll_transaction("scep", &enrollgate_scep::transaction_key(&request))
                .await
        }
        RequestContent::GetCert(id) => {
            return get_cert(state, ra, &request, id.serial_number.as_bytes()).await;
        }
        RequestContent::GetCrl(_) => return get_crl(state, ra, &request).await,
    };
    cert_rep(enrollgate_scep::cert_rep_for_outcome(
        ra,
        &request.reply_to,
        &outcome,
        &mut rng,
    ))
}

async fn get_cert(
    state: &AppState,
    ra: &RaIdentity,
    request: &PkiRequest,
    serial: &[u8],
) -> Response<Body> {
    let serial = hex::encode(serial);
    match state.registrar.store().certificate(&serial).await {
        Ok(Some(cert)) => {
            let payload = CertRepPayload::Certificates(vec![cert.der]);
            cert_rep(enrollgate_scep::cert_rep_success(
                ra,
                &request.reply_to,
                &payload,
                &mut rng,
            ))
        }
        Ok(None) => {
            let why = Some("no certificate with that serial");
            cert_rep(enrollgate_scep::cert_rep_failure(
                ra,
                &request.reply_to,
                FailInfo::BadCertId,
                why,
                &mut rng,
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "store failed during GetCert");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn get_crl(state: &AppState, ra: &RaIdentity, request: &PkiRequest) -> Response<Body> {
    match crate::crl::current(state).await {
        Ok(crl) => {
            let payload = CertRepPayload::Crl(crl);
            cert_rep(enrollgate_scep::cert_rep_success(
                ra,
                &request.reply_to,
                &payload,
                &mut rng,
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "CRL generation failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn rng(buf: &mut [u8]) {
    use aws_lc_rs::rand::SecureRandom;
    // The system RNG only fails when the OS cannot provide entropy; nothing is safe then.
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf)
        .expect("operating system random source failed");
}

fn cert_rep(built: Result<Vec<u8>, enrollgate_scep::ScepError>) -> Response<Body> {
    match built {
        Ok(der) => reply(enrollgate_scep::pki_operation_reply(der)),
        Err(e) => internal(&e),
    }
}

fn internal(e: &enrollgate_scep::ScepError) -> Response<Body> {
    tracing::error!(error = %e, "building a SCEP reply failed");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn reply(r: HttpReply) -> Response<Body> {
    Response::builder()
        .header("content-type", r.content_type)
        .body(Body::from(r.body))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn scep_paths_select_routes() {
        assert_eq!(route_label("/cgi-bin/pkiclient.exe"), Some(""));
        assert_eq!(route_label("/scep"), Some(""));
        assert_eq!(route_label("/scep/iot"), Some("iot"));
        assert_eq!(route_label("/scep/iot/pkiclient.exe"), Some("iot"));
        assert_eq!(route_label("/scep/a/b"), None);
        assert_eq!(route_label("/est"), None);
    }
}
