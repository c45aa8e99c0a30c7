//! Simulator throughput at benchmark scale: a company with many vendors (default 1,000,000; override with
//! `SIM_BENCH_VENDORS`), read with keyset-paged `query` (the connector's incremental pattern) and with
//! readByQuery/readMore. Prints pages per second and records per second.

use std::time::Instant;

use ml_sim_intacct::{
    CompanySize, DEFAULT_COMPANY_ID, DEFAULT_SENDER_ID, DEFAULT_SENDER_PASSWORD, DEFAULT_USER_ID,
    DEFAULT_USER_PASSWORD, SimConfig, Simulator,
};

fn envelope(function: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><control><senderid>{DEFAULT_SENDER_ID}</senderid><password>{DEFAULT_SENDER_PASSWORD}</password>\
<controlid>bench</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion><includewhitespace>false</includewhitespace></control>\
<operation><authentication><login><userid>{DEFAULT_USER_ID}</userid><companyid>{DEFAULT_COMPANY_ID}</companyid><password>{DEFAULT_USER_PASSWORD}</password></login></authentication>\
<content><function controlid=\"f\">{function}</function></content></operation></request>"
    )
}

fn probe<'a>(doc: &'a str, elem: &str, attr: &str) -> Option<&'a str> {
    let i = doc.find(&format!("<{elem} "))?;
    let tag = &doc[i..i + doc[i..].find('>')?];
    let k = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(&tag[k..k + tag[k..].find('"')?])
}

fn last_text<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let i = doc.rfind(&open)? + open.len();
    Some(&doc[i..i + doc[i..].find('<')?])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let vendors: u64 = std::env::var("SIM_BENCH_VENDORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pages: usize = std::env::var("SIM_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cfg = SimConfig {
        size: CompanySize {
            vendors,
            ..CompanySize::demo()
        },
        ..SimConfig::default()
    };
    let t0 = Instant::now();
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    println!("start with {vendors} vendors: {:?}", t0.elapsed());
    let http = reqwest::Client::new();

    // Keyset paging on (WHENMODIFIED, RECORDNO), 2000 rows a page.
    let (mut wm, mut no) = ("01/01/2000 00:00:00".to_string(), 0u64);
    let t = Instant::now();
    let mut rows = 0usize;
    for _ in 0..pages {
        let f = format!(
            "<query><object>VENDOR</object><select><field>RECORDNO</field><field>VENDORID</field><field>NAME</field><field>WHENMODIFIED</field></select>\
<filter><or><greaterthan><field>WHENMODIFIED</field><value>{wm}</value></greaterthan><and><equalto><field>WHENMODIFIED</field><value>{wm}</value></equalto>\
<greaterthan><field>RECORDNO</field><value>{no}</value></greaterthan></and></or></filter>\
<orderby><order><field>WHENMODIFIED</field><ascending/></order><order><field>RECORDNO</field><ascending/></order></orderby>\
<options><showprivate>true</showprivate></options><pagesize>2000</pagesize></query>"
        );
        let doc = http
            .post(sim.endpoint())
            .body(envelope(&f))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        let count: usize = probe(&doc, "data", "count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        rows += count;
        if count == 0 {
            break;
        }
        wm = last_text(&doc, "WHENMODIFIED")
            .unwrap_or_default()
            .to_string();
        no = last_text(&doc, "RECORDNO")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    let el = t.elapsed();
    println!(
        "query keyset: {pages} pages, {rows} rows in {el:?} ({:.1} pages/s, {:.0} rows/s)",
        pages as f64 / el.as_secs_f64(),
        rows as f64 / el.as_secs_f64()
    );

    // readByQuery + readMore, 1000 rows a page.
    let t = Instant::now();
    let doc = http
        .post(sim.endpoint())
        .body(envelope("<readByQuery><object>VENDOR</object><fields>*</fields><query></query><pagesize>1000</pagesize></readByQuery>"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    let mut rid = probe(&doc, "data", "resultId")
        .unwrap_or_default()
        .to_string();
    let mut rows = probe(&doc, "data", "count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    for _ in 1..pages {
        if rid.is_empty() {
            break;
        }
        let doc = http
            .post(sim.endpoint())
            .body(envelope(&format!(
                "<readMore><resultId>{rid}</resultId></readMore>"
            )))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        rows += probe(&doc, "data", "count")
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(0);
        rid = probe(&doc, "data", "resultId")
            .unwrap_or_default()
            .to_string();
    }
    let el = t.elapsed();
    println!(
        "readByQuery/readMore: {rows} rows in {el:?} ({:.0} rows/s)",
        rows as f64 / el.as_secs_f64()
    );
    println!("stats: {:?}", sim.stats());
    sim.shutdown().await;
}
