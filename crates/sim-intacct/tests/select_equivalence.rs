//! The indexed path answers exactly what the scan answers: the same keys in the same order and the
//! same total, for seeded random filters, orders, offsets and page sizes, on tables with updated,
//! deleted and inserted rows, and page after page through the connector's keyset passes while
//! records change between pages.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use ml_sim_intacct::clock::fmt_ts;
use ml_sim_intacct::data::{Generator, ObjectDef, Store, object_def};
use ml_sim_intacct::query_eval::{Filter, Op, prepare};
use ml_sim_intacct::select::{Criteria, Page, indexed, scan};
use ml_sim_intacct::{CompanySize, SimConfig};

fn store(vendors: u64) -> Store {
    let cfg = SimConfig::default();
    Store::new(Generator {
        seed: 7,
        size: CompanySize {
            vendors,
            ..CompanySize::tiny()
        },
        start: cfg.clock_start,
        user_id: cfg.user_id.clone(),
    })
}

fn cmp(def: &ObjectDef, field: &str, op: Op, values: &[String]) -> Filter {
    Filter::Cmp {
        field: def.field_index(field).expect("field"),
        op,
        values: values.to_vec(),
        lits: vec![],
    }
}

/// WHENMODIFIED values of the table's rows (for cursors and literals that hit ties).
fn wms(store: &Store, def: &'static ObjectDef) -> Vec<NaiveDateTime> {
    let fi = def.field_index("WHENMODIFIED").expect("field");
    let mut out = Vec::new();
    store.scan(def, |r| {
        if let Some(t) = ml_sim_intacct::clock::parse_ts(r.text(fi)) {
            out.push(t)
        }
    });
    out
}

struct Gen<'a> {
    rng: SmallRng,
    def: &'static ObjectDef,
    wms: &'a [NaiveDateTime],
    max_key: u64,
}

impl Gen<'_> {
    fn recno(&mut self) -> String {
        let k = self.rng.random_range(0..self.max_key + 20) as i64 - 10;
        k.to_string()
    }
    fn ts(&mut self) -> String {
        let t = self.wms[self.rng.random_range(0..self.wms.len())];
        // Mostly values rows have (ties), sometimes a second off, sometimes a date only.
        match self.rng.random_range(0..6) {
            0 => fmt_ts(t + Duration::seconds(1)),
            1 => t.format("%m/%d/%Y").to_string(),
            _ => fmt_ts(t),
        }
    }
    fn op(&mut self) -> Op {
        const OPS: [Op; 10] = [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Gt,
            Op::Ge,
            Op::Between,
            Op::In,
            Op::NotIn,
            Op::IsNull,
        ];
        OPS[self.rng.random_range(0..OPS.len())]
    }
    fn atom(&mut self) -> Filter {
        let def = self.def;
        let op = self.op();
        let n = match op {
            Op::Between => 2,
            Op::In | Op::NotIn => self.rng.random_range(1..4),
            Op::IsNull => 0,
            _ => 1,
        };
        match self.rng.random_range(0..10) {
            0..4 => {
                let vs: Vec<String> = (0..n).map(|_| self.recno()).collect();
                cmp(def, "RECORDNO", op, &vs)
            }
            4..8 => {
                let op = if self.rng.random_bool(0.1) {
                    Op::IsNotNull
                } else {
                    op
                };
                let vs: Vec<String> = (0..n).map(|_| self.ts()).collect();
                cmp(def, "WHENMODIFIED", op, &vs)
            }
            // Residual conjuncts the index does not understand, and literals of the wrong type.
            8 => cmp(def, "STATUS", Op::Eq, &["active".into()]),
            _ => match self.rng.random_range(0..3) {
                0 => cmp(def, "RECORDNO", Op::Gt, &["abc".into()]),
                1 => cmp(def, "WHENMODIFIED", Op::Lt, &["soon".into()]),
                _ => cmp(def, "RECORDNO", Op::Like, &["1%".into()]),
            },
        }
    }
    fn filter(&mut self, depth: u32) -> Filter {
        if depth == 0 || self.rng.random_bool(0.35) {
            return self.atom();
        }
        let n = self.rng.random_range(2..4);
        let xs: Vec<Filter> = (0..n).map(|_| self.filter(depth - 1)).collect();
        match self.rng.random_range(0..5) {
            0 => Filter::Not(Box::new(xs.into_iter().next().expect("one"))),
            1 | 2 => Filter::Or(xs),
            _ => Filter::And(xs),
        }
    }
    /// The connector's shapes: keyset cursors, RECORDNO ranges of chains, the never-modified pass.
    fn client_filter(&mut self) -> Filter {
        let def = self.def;
        let mut conds = vec![match self.rng.random_range(0..3) {
            0 => cmp(def, "WHENMODIFIED", Op::IsNull, &[]),
            1 => cmp(def, "WHENMODIFIED", Op::IsNotNull, &[]),
            _ => {
                let (ts, n) = (self.ts(), self.recno());
                Filter::Or(vec![
                    cmp(def, "WHENMODIFIED", Op::Gt, std::slice::from_ref(&ts)),
                    Filter::And(vec![
                        cmp(def, "WHENMODIFIED", Op::Eq, &[ts]),
                        cmp(def, "RECORDNO", Op::Gt, &[n]),
                    ]),
                ])
            }
        }];
        if self.rng.random_bool(0.5) {
            conds.push(cmp(def, "RECORDNO", Op::Gt, &[self.recno()]));
        }
        if self.rng.random_bool(0.5) {
            conds.push(cmp(def, "RECORDNO", Op::Le, &[self.recno()]));
        }
        if conds.len() == 1 {
            conds.pop().expect("one")
        } else {
            Filter::And(conds)
        }
    }
}

fn orders(def: &ObjectDef) -> Vec<Vec<(usize, bool)>> {
    let (k, w) = (
        def.field_index("RECORDNO").expect("field"),
        def.field_index("WHENMODIFIED").expect("field"),
    );
    let name = def.field_index(def.name_field).expect("field");
    vec![
        vec![],
        vec![(k, false)],
        vec![(w, false)],
        vec![(w, false), (k, false)],
        vec![(w, true)],
        vec![(name, false)],
    ]
}

/// Both paths; panics with the request when they differ. The scan's page, and whether the index
/// answered.
fn check(store: &Store, crit: &Criteria<'_>) -> (Page, bool) {
    let want: Page = scan::select(store, crit, |_| true);
    match indexed::select(store, crit) {
        Some(got) => {
            assert_eq!(got, want, "indexed != scan for {crit:?}");
            (want, true)
        }
        None => (want, false),
    }
}

/// Updates, deletes and inserts, some landing on WHENMODIFIED values other rows already have.
fn write_some(store: &mut Store, def: &'static ObjectDef, rng: &mut SmallRng, n: usize) {
    let wms = wms(store, def);
    let max_key = def.recno_base + store.table(def).base;
    for i in 0..n {
        let now = match rng.random_range(0..3) {
            0 => wms[rng.random_range(0..wms.len())],
            1 => wms.iter().max().copied().expect("rows") + Duration::seconds(i as i64),
            _ => wms.iter().min().copied().expect("rows"),
        };
        let key = def.recno_base + rng.random_range(0..max_key);
        let fields: BTreeMap<String, String> = [("STATUS".to_string(), "inactive".to_string())]
            .into_iter()
            .collect();
        match rng.random_range(0..4) {
            0 => {
                store.delete(def, key);
            }
            1 => {
                store.insert(def, &fields, now, false);
            }
            _ => {
                store.update(def, key, &fields, now);
            }
        }
    }
}

#[test]
fn random_filters_orders_and_pages_match_the_scan() {
    let mut rng = SmallRng::seed_from_u64(11);
    // Past two index blocks of 1,024 rows, so counts use whole blocks and partial ones.
    let mut st = store(2200);
    let def = object_def("VENDOR").expect("VENDOR");
    let mut served = 0;
    let mut asked = 0;
    for round in 0..3 {
        if round > 0 {
            write_some(&mut st, def, &mut rng, 40);
        }
        let wms = wms(&st, def);
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(round),
            def,
            wms: &wms,
            max_key: def.recno_base + st.table(def).base + 1100,
        };
        for i in 0..150 {
            let mut f = if i % 2 == 0 {
                g.client_filter()
            } else {
                g.filter(3)
            };
            prepare(&mut f, def);
            let filter = (i % 37 != 0).then_some(&f);
            let mut orders = orders(def);
            // Half of the orders per filter keeps a debug test run short.
            for _ in 0..3 {
                let order = orders.swap_remove(g.rng.random_range(0..orders.len()));
                let offset = match g.rng.random_range(0..4) {
                    0 => g.rng.random_range(0..2200),
                    _ => g.rng.random_range(0..5),
                };
                let limit = [1, 7, 100, 2000, usize::MAX][g.rng.random_range(0..5)];
                let crit = Criteria {
                    def,
                    filter,
                    order: &order,
                    ci: g.rng.random_bool(0.2),
                    offset,
                    limit,
                };
                asked += 1;
                served += usize::from(check(&st, &crit).1);
            }
        }
    }
    // Two in three orders are the index's; most filters are recognised.
    eprintln!("the index served {served} of {asked} requests");
    assert!(served * 2 > asked, "index served {served} of {asked}");
}

#[test]
fn keyset_passes_page_by_page_while_records_change() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut st = store(2500);
    let def = object_def("VENDOR").expect("VENDOR");
    let (k, w) = (
        def.field_index("RECORDNO").expect("field"),
        def.field_index("WHENMODIFIED").expect("field"),
    );
    let by_wm = [(w, false), (k, false)];
    let by_key = [(k, false)];
    for chain in [(None, None), (Some(600u64), Some(1900u64))] {
        // The modified pass, (WHENMODIFIED, RECORDNO) keyset, optionally within a RECORDNO range.
        let mut cursor: Option<(String, u64)> = None;
        let mut pages = 0;
        loop {
            let mut conds = vec![match &cursor {
                None => cmp(def, "WHENMODIFIED", Op::IsNotNull, &[]),
                Some((ts, n)) => Filter::Or(vec![
                    cmp(def, "WHENMODIFIED", Op::Gt, std::slice::from_ref(ts)),
                    Filter::And(vec![
                        cmp(def, "WHENMODIFIED", Op::Eq, std::slice::from_ref(ts)),
                        cmp(def, "RECORDNO", Op::Gt, &[n.to_string()]),
                    ]),
                ]),
            }];
            if let Some(l) = chain.0 {
                conds.push(cmp(def, "RECORDNO", Op::Gt, &[l.to_string()]));
            }
            if let Some(u) = chain.1 {
                conds.push(cmp(def, "RECORDNO", Op::Le, &[u.to_string()]));
            }
            let mut f = Filter::And(conds);
            prepare(&mut f, def);
            let crit = Criteria {
                def,
                filter: Some(&f),
                order: &by_wm,
                ci: false,
                offset: 0,
                limit: 200,
            };
            let (page, served) = check(&st, &crit);
            assert!(served, "the keyset page is served by the index");
            let Some(&last) = page.keys.last() else {
                break;
            };
            let r = st.get(def, last).expect("row on the page");
            cursor = Some((r.text(w).to_string(), last));
            pages += 1;
            // Changes between pages: some land behind the cursor, some ahead of it.
            write_some(&mut st, def, &mut rng, 5);
            assert!(pages < 100, "the pass ends");
        }
        // The never-modified pass, RECORDNO keyset.
        let mut after: Option<u64> = None;
        loop {
            let mut conds = vec![cmp(def, "WHENMODIFIED", Op::IsNull, &[])];
            if let Some(n) = after {
                conds.push(cmp(def, "RECORDNO", Op::Gt, &[n.to_string()]));
            }
            if let Some(u) = chain.1 {
                conds.push(cmp(def, "RECORDNO", Op::Le, &[u.to_string()]));
            }
            let mut f = Filter::And(conds);
            prepare(&mut f, def);
            let crit = Criteria {
                def,
                filter: Some(&f),
                order: &by_key,
                ci: false,
                offset: 0,
                limit: 50,
            };
            let (page, served) = check(&st, &crit);
            assert!(served, "the never-modified page is served by the index");
            let Some(&last) = page.keys.last() else {
                break;
            };
            after = Some(last);
            write_some(&mut st, def, &mut rng, 2);
        }
    }
}

#[test]
fn balances_by_period_match_the_scan() {
    let mut st = store(10);
    let def = object_def("GLACCOUNTBALANCE").expect("GLACCOUNTBALANCE");
    let k = def.field_index("RECORDNO").expect("field");
    let by_key = [(k, false)];
    let periods: Vec<String> = (0..st.generator.size.periods)
        .map(|p| st.generator.period_name(p))
        .collect();
    let wms = wms(&st, def);
    let mut rng = SmallRng::seed_from_u64(3);
    for round in 0..3 {
        if round > 0 {
            write_some(&mut st, def, &mut rng, 10);
        }
        for (pi, name) in periods.iter().enumerate() {
            for variant in 0..6 {
                let period = if variant % 2 == 1 {
                    name.to_uppercase()
                } else {
                    name.clone()
                };
                let mut conds = vec![cmp(def, "PERIOD", Op::Eq, &[period])];
                if variant >= 2 {
                    conds.push(cmp(def, "WHENMODIFIED", Op::Ge, &[fmt_ts(wms[pi])]));
                }
                if variant >= 4 {
                    // The client's extra filter: a residual the index cannot count.
                    conds.push(cmp(def, "BOOKID", Op::NotLike, &["X%".into()]));
                }
                conds.push(cmp(def, "RECORDNO", Op::Gt, &[(40 * pi).to_string()]));
                let mut f = Filter::And(conds);
                prepare(&mut f, def);
                for ci in [false, true] {
                    for limit in [1, 25, 2000] {
                        let crit = Criteria {
                            def,
                            filter: Some(&f),
                            order: &by_key,
                            ci,
                            offset: 0,
                            limit,
                        };
                        assert!(
                            check(&st, &crit).1,
                            "PERIOD filters are served by the index"
                        );
                    }
                }
            }
        }
    }
}
