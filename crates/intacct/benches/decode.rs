//! Decodes a generated 2,000-record VENDOR page repeatedly; prints records/s and bytes
//! allocated per page (a counting global allocator). Target: >= 300,000 records/s on one core
//! in release. Usage: `cargo bench -p ml-intacct --bench decode [-- <iterations>]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ml_intacct::protocol::decode_response;

struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RECORDS: usize = 2000;

fn page() -> Vec<u8> {
    let mut s = String::with_capacity(RECORDS * 700);
    s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status><senderid>S</senderid><controlid>c</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion></control><operation><authentication><status>success</status><userid>u</userid><companyid>C</companyid><locationid></locationid><sessiontimestamp>2024-01-01T00:00:00+00:00</sessiontimestamp><sessiontimeout>2024-01-02T00:00:00+00:00</sessiontimeout></authentication><result><status>success</status><function>query</function><controlid>q</controlid>"#);
    s.push_str(&format!(r#"<data listtype="VENDOR" totalcount="{RECORDS}" offset="0" count="{RECORDS}" numremaining="0">"#));
    for n in 1..=RECORDS {
        s.push_str(&format!(
            "<VENDOR><RECORDNO>{n}</RECORDNO><VENDORID>V{n:06}</VENDORID><NAME>Vendor {n} &amp; Co</NAME>\
             <PARENTKEY></PARENTKEY><PARENTID/><VENDTYPE>Supplier</VENDTYPE><STATUS>active</STATUS>\
             <APACCOUNT>2000</APACCOUNT><TOTALDUE>{n}.45</TOTALDUE><ONHOLD>false</ONHOLD>\
             <CURRENCY>USD</CURRENCY><TERMNAME>Net 30</TERMNAME><TAXID>12-345{n:04}</TAXID>\
             <DISPLAYCONTACT.EMAIL1>ap{n}@example.com</DISPLAYCONTACT.EMAIL1>\
             <WHENCREATED>01/0{}/2024 10:00:00</WHENCREATED><WHENMODIFIED>02/03/2024 11:12:13</WHENMODIFIED>\
             <MEGAENTITYID></MEGAENTITYID><RECORD_URL>https://www.intacct.com/ia/acct/ur.phtml?.r={n}</RECORD_URL></VENDOR>",
            n % 9 + 1
        ));
    }
    s.push_str("</data></result></operation></response>");
    s.into_bytes()
}

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 3 } else { 200 });
    let body = page();
    // warm-up, and a correctness check so the loop cannot be optimised into nothing
    let r = decode_response(&body).expect("generated page decodes");
    assert_eq!(
        r.operation.as_ref().unwrap().results[0].records.len(),
        RECORDS
    );

    let b0 = BYTES.load(Ordering::Relaxed);
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut total = 0usize;
    for _ in 0..iterations {
        let r = decode_response(std::hint::black_box(&body)).unwrap();
        total += r.operation.unwrap().results[0].records.len();
    }
    let dt = t0.elapsed();
    let bytes = BYTES.load(Ordering::Relaxed) - b0;
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    let per_s = total as f64 / dt.as_secs_f64();
    println!(
        "decode: {RECORDS}-record VENDOR page ({} bytes), {iterations} iterations",
        body.len()
    );
    println!("  records/s:            {per_s:.0} (target >= 300000 in release)");
    println!(
        "  MB/s:                 {:.1}",
        body.len() as f64 * f64::from(iterations) / dt.as_secs_f64() / 1e6
    );
    println!("  bytes allocated/page: {}", bytes / u64::from(iterations));
    println!(
        "  allocations/page:     {} ({:.2} per field)",
        allocs / u64::from(iterations),
        allocs as f64 / f64::from(iterations) / (RECORDS as f64 * 18.0)
    );
}
