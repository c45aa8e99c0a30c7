//! Shared test helpers: hand-written request documents and tiny string probes over responses.
#![allow(dead_code)]

use ml_sim_intacct::{
    DEFAULT_COMPANY_ID, DEFAULT_SENDER_ID, DEFAULT_SENDER_PASSWORD, DEFAULT_USER_ID,
    DEFAULT_USER_PASSWORD,
};

pub fn envelope_with(
    sender: &str,
    sender_pw: &str,
    transaction: bool,
    auth: &str,
    functions: &str,
) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request><control><senderid>{sender}</senderid><password>{sender_pw}</password>\
<controlid>ctl-42</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion><includewhitespace>false</includewhitespace>\
</control><operation transaction=\"{transaction}\"><authentication>{auth}</authentication><content>{functions}</content></operation></request>"
    )
}

pub fn envelope(auth: &str, functions: &str) -> String {
    envelope_with(
        DEFAULT_SENDER_ID,
        DEFAULT_SENDER_PASSWORD,
        false,
        auth,
        functions,
    )
}

pub fn login() -> String {
    login_as(DEFAULT_USER_ID, DEFAULT_COMPANY_ID, DEFAULT_USER_PASSWORD)
}

pub fn login_as(user: &str, company: &str, pw: &str) -> String {
    format!(
        "<login><userid>{user}</userid><companyid>{company}</companyid><password>{pw}</password></login>"
    )
}

pub fn session(id: &str) -> String {
    format!("<sessionid>{id}</sessionid>")
}

pub fn get_api_session() -> String {
    "<function controlid=\"session-1\"><getAPISession/></function>".to_string()
}

pub fn read_by_query(cid: &str, object: &str, fields: &str, query: &str, pagesize: u32) -> String {
    format!(
        "<function controlid=\"{cid}\"><readByQuery><object>{object}</object><fields>{fields}</fields><query>{query}</query><pagesize>{pagesize}</pagesize></readByQuery></function>"
    )
}

pub fn read_more(cid: &str, result_id: &str) -> String {
    format!(
        "<function controlid=\"{cid}\"><readMore><resultId>{result_id}</resultId></readMore></function>"
    )
}

/// A `query` function; `filter` and `orderby` are inner XML (may be empty).
pub fn query(
    cid: &str,
    object: &str,
    fields: &[&str],
    filter: &str,
    orderby: &str,
    pagesize: u32,
    offset: u32,
) -> String {
    let select: String = fields
        .iter()
        .map(|f| format!("<field>{f}</field>"))
        .collect();
    let filter = if filter.is_empty() {
        String::new()
    } else {
        format!("<filter>{filter}</filter>")
    };
    let orderby = if orderby.is_empty() {
        String::new()
    } else {
        format!("<orderby>{orderby}</orderby>")
    };
    format!(
        "<function controlid=\"{cid}\"><query><object>{object}</object><select>{select}</select>{filter}{orderby}\
<options><caseinsensitive>false</caseinsensitive><showprivate>true</showprivate></options><pagesize>{pagesize}</pagesize><offset>{offset}</offset></query></function>"
    )
}

pub async fn post(url: &str, body: String) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Text of every `<tag>...</tag>` (no nesting of the same tag assumed).
pub fn all(doc: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

pub fn first(doc: &str, tag: &str) -> Option<String> {
    all(doc, tag).into_iter().next()
}

/// Attribute of the first `<elem ...>`.
pub fn attr(doc: &str, elem: &str, name: &str) -> Option<String> {
    let i = doc.find(&format!("<{elem} "))?;
    let end = i + doc[i..].find('>')?;
    let tag = &doc[i..end];
    let key = format!(" {name}=\"");
    let k = tag.find(&key)? + key.len();
    let v = &tag[k..];
    Some(v[..v.find('"')?].to_string())
}

pub fn count_tag(doc: &str, tag: &str) -> usize {
    doc.matches(&format!("<{tag}>")).count()
}
