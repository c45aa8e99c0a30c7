//! Simulator throughput at benchmark scale: a company with many vendors (default 1,000,000; override with
//! `SIM_BENCH_VENDORS`), read with keyset-paged `query` (the connector's incremental pattern) and with
//! readByQuery/readMore. Prints pages per second and records per second, the first page apart (it
//! builds the WHENMODIFIED column and the ordered index), then the selection alone (which rows, how
//! many in all: no rendering, no HTTP) by the scan and by the index for the connector's page shapes.

use std::time::{Duration, Instant};

use ml_sim_intacct::data::{Generator, Store, object_def};
use ml_sim_intacct::query_eval::{Filter, Op, prepare};
use ml_sim_intacct::select::{Criteria, indexed, scan};

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

    // Fields to select (SIM_BENCH_FIELDS, comma separated); the connector's VENDOR stream selects 18.
    let fields: String = std::env::var("SIM_BENCH_FIELDS")
        .unwrap_or_else(|_| "RECORDNO,VENDORID,NAME,WHENMODIFIED".into())
        .split(',')
        .map(|f| format!("<field>{}</field>", f.trim()))
        .collect();

    // Keyset paging on (WHENMODIFIED, RECORDNO), 2000 rows a page.
    let (mut wm, mut no) = ("01/01/2000 00:00:00".to_string(), 0u64);
    let t = Instant::now();
    let mut rows = 0usize;
    let mut first_page = Duration::ZERO;
    for page in 0..pages {
        if page == 1 {
            first_page = t.elapsed();
        }
        let f = format!(
            "<query><object>VENDOR</object><select>{fields}</select>\
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
        "query keyset: {pages} pages, {rows} rows in {el:?} ({:.1} pages/s, {:.0} rows/s); first page {first_page:?}, then {:?} a page",
        pages as f64 / el.as_secs_f64(),
        rows as f64 / el.as_secs_f64(),
        (el - first_page) / (pages.max(2) - 1) as u32
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
    selection_only(vendors);
}

/// Time per call of `f`, over at least `min` calls and 0.3 s.
fn per_call(min: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    let mut n = 0u32;
    while n < min || t.elapsed() < Duration::from_millis(300) {
        f();
        n += 1;
    }
    t.elapsed() / n
}

/// Which rows a 2,000-row page holds and the total, scan against index, in process.
fn selection_only(vendors: u64) {
    let cfg = SimConfig::default();
    let store = Store::new(Generator {
        seed: cfg.seed,
        size: CompanySize {
            vendors,
            ..CompanySize::demo()
        },
        start: cfg.clock_start,
        user_id: cfg.user_id.clone(),
    });
    let def = object_def("VENDOR").expect("VENDOR");
    let (k, w) = (
        def.field_index("RECORDNO").expect("field"),
        def.field_index("WHENMODIFIED").expect("field"),
    );
    let cmp = |field: usize, op: Op, v: &str| Filter::Cmp {
        field,
        op,
        values: if v.is_empty() {
            vec![]
        } else {
            vec![v.to_string()]
        },
        lits: vec![],
    };
    let t = Instant::now();
    let _ = store.gen_index(def);
    println!(
        "\nselection only, {vendors} vendors (index built in {:?})",
        t.elapsed()
    );
    // A cursor in the middle of the modified pass: the WHENMODIFIED of the median row.
    let mid = {
        let all = indexed::select(
            &store,
            &Criteria {
                def,
                filter: None,
                order: &[(w, false), (k, false)],
                ci: false,
                offset: (vendors / 2) as usize,
                limit: 1,
            },
        )
        .expect("indexed");
        let r = store.get(def, all.keys[0]).expect("row");
        (r.text(w).to_string(), r.key)
    };
    let keyset = Filter::Or(vec![
        cmp(w, Op::Gt, &mid.0),
        Filter::And(vec![
            cmp(w, Op::Eq, &mid.0),
            cmp(k, Op::Gt, &mid.1.to_string()),
        ]),
    ]);
    let half = (vendors / 2).to_string();
    let shapes = vec![
        (
            "modified pass, first page",
            cmp(w, Op::IsNotNull, ""),
            vec![(w, false), (k, false)],
        ),
        (
            "modified pass, mid cursor",
            keyset.clone(),
            vec![(w, false), (k, false)],
        ),
        (
            "modified chain, RECORDNO <= n/2",
            Filter::And(vec![keyset, cmp(k, Op::Le, &half)]),
            vec![(w, false), (k, false)],
        ),
        (
            "never-modified pass, RECORDNO > n/2",
            Filter::And(vec![cmp(w, Op::IsNull, ""), cmp(k, Op::Gt, &half)]),
            vec![(k, false)],
        ),
        (
            "all keys, RECORDNO > n/2",
            cmp(k, Op::Gt, &half),
            vec![(k, false)],
        ),
    ];
    for (name, mut f, order) in shapes {
        prepare(&mut f, def);
        let crit = Criteria {
            def,
            filter: Some(&f),
            order: &order,
            ci: false,
            offset: 0,
            limit: 2000,
        };
        let by_index = per_call(20, || {
            std::hint::black_box(indexed::select(&store, &crit).expect("served"));
        });
        let by_scan = per_call(3, || {
            std::hint::black_box(scan::select(&store, &crit, |_| true));
        });
        println!("  {name}: scan {by_scan:?}, index {by_index:?} a page");
    }
}
