//! Who a request runs as: sign-in with `<login>` or a session, the sender's Web Services
//! authorization, and getAPISession, which opens sessions.

use super::*;

pub(super) type AuthFailure = Box<(AuthEcho, Vec<ErrorItem>)>;

pub(super) fn authenticate(
    state: &State,
    auth: &Auth,
    sender_unauthorized: bool,
    senderid: &str,
    fault: Option<&Fault>,
) -> Result<Principal, AuthFailure> {
    let cfg = &state.cfg;
    let now = state.clock.now();
    let lifetime =
        chrono::Duration::from_std(cfg.session_lifetime).unwrap_or(chrono::Duration::hours(2));
    let failed = |userid: &str, companyid: &str, e: ErrorItem| -> AuthFailure {
        Box::new((
            AuthEcho {
                status_ok: false,
                userid: userid.to_string(),
                companyid: companyid.to_string(),
                ..Default::default()
            },
            vec![e],
        ))
    };
    let sign_in = || ErrorItem::new("XL03000006", "", "Sign-in information is incorrect", "");
    match auth {
        Auth::Login {
            userid,
            companyid,
            password,
            locationid,
            ..
        } => {
            state.with_stats(|s| s.logins += 1);
            let mut parts = companyid.split('|');
            let company = parts.next().unwrap_or("").trim();
            let entity = parts
                .next()
                .map(str::trim)
                .map(str::to_string)
                .or_else(|| locationid.clone())
                .unwrap_or_default();
            if sender_unauthorized {
                return Err(failed(
                    userid,
                    companyid,
                    unauthorized_sender(senderid, company),
                ));
            }
            if matches!(fault, Some(Fault::AuthError))
                || !company.eq_ignore_ascii_case(&cfg.company_id)
                || *userid != cfg.user_id
                || *password != cfg.user_password
                || (!entity.is_empty() && !entity_exists(state, &entity))
            {
                return Err(failed(userid, companyid, sign_in()));
            }
            Ok(Principal {
                userid: userid.clone(),
                companyid: cfg.company_id.clone(),
                locationid: entity,
                timestamp: now,
                timeout: now + lifetime,
                via_login: true,
            })
        }
        Auth::Session(id) => {
            let mut sessions = state.sessions.lock().expect("sessions lock");
            let invalid = || {
                failed(
                    "",
                    "",
                    ErrorItem::new("XL03000006", "", "Invalid session. Please login again.", ""),
                )
            };
            let Some(s) = sessions.get_mut(id) else {
                return Err(invalid());
            };
            if s.expires < now {
                sessions.remove(id);
                return Err(invalid());
            }
            if sender_unauthorized {
                let company = s.company_id.clone();
                return Err(failed(
                    &s.user_id.clone(),
                    &company,
                    unauthorized_sender(senderid, &company),
                ));
            }
            if matches!(fault, Some(Fault::AuthError)) {
                return Err(invalid());
            }
            // Sliding expiry: every call pushes the timeout out again.
            s.expires = now + lifetime;
            Ok(Principal {
                userid: s.user_id.clone(),
                companyid: s.company_id.clone(),
                locationid: s.location_id.clone(),
                timestamp: now,
                timeout: s.expires,
                via_login: false,
            })
        }
    }
}

pub(super) fn unauthorized_sender(senderid: &str, company: &str) -> ErrorItem {
    ErrorItem::new(
        "XL03000006",
        "Invalid Web Services Authorization",
        &format!(
            "The sender ID '{senderid}' is not authorized to make Web Services requests to company ID '{company}'."
        ),
        "Contact the company administrator to grant Web Services authorization to this sender ID.",
    )
}

pub(super) fn entity_exists(state: &State, entity: &str) -> bool {
    let store = state.store.read().expect("store lock");
    let def = object_def("LOCATION").expect("LOCATION defined");
    let fi = def.field_index("LOCATIONID").expect("field");
    let mut found = false;
    store.scan(def, |r| found |= r.text(fi) == entity);
    found
}

pub(super) fn get_api_session(
    state: &Arc<State>,
    p: &Principal,
    locationid: Option<String>,
) -> Outcome {
    if !p.via_login {
        state.with_stats(|s| s.logins += 1);
    }
    let location = match locationid {
        Some(l) if !l.trim().is_empty() => {
            if !entity_exists(state, l.trim()) {
                return Outcome::fail(vec![ErrorItem::new(
                    "Get API Session Failed",
                    "",
                    &format!("Invalid location ID {} {}", l.trim(), sid(state)),
                    "",
                )]);
            }
            l.trim().to_string()
        }
        Some(_) => String::new(),
        None => p.locationid.clone(),
    };
    let id = format!(
        "{}{}..",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = state.clock.now();
    let lifetime = chrono::Duration::from_std(state.cfg.session_lifetime)
        .unwrap_or(chrono::Duration::hours(2));
    let mut sessions = state.sessions.lock().expect("sessions lock");
    // Forget expired sessions so a long-running simulator does not accumulate them.
    sessions.retain(|_, s| s.expires >= now);
    sessions.insert(
        id.clone(),
        Session {
            user_id: p.userid.clone(),
            company_id: p.companyid.clone(),
            location_id: location.clone(),
            expires: now + lifetime,
        },
    );
    drop(sessions);
    let endpoint = state
        .cfg
        .advertised_endpoint
        .clone()
        .unwrap_or_else(|| state.endpoint.clone());
    Outcome::data(0, move |x| {
        x.open("data");
        x.open("api");
        x.leaf("sessionid", &id);
        x.leaf("endpoint", &endpoint);
        x.leaf("locationid", &location);
        x.close("api");
        x.close("data");
    })
}
