//! The README's section on the simulators against the simulators themselves: its fault-plan
//! examples and the fault and trigger names it lists parse with each simulator's own format, and
//! the start-up banners print valid TOML and only admin endpoints the README lists.

use std::collections::BTreeMap;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

/// The Intacct and Power BI cells of the simulators table's row `name`.
fn row(readme: &str, name: &str) -> (String, String) {
    let line = readme
        .lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("the README's simulators table has no row {name:?}"));
    let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
    assert_eq!(cells.len(), 3, "{line}");
    (cells[1].trim().to_string(), cells[2].trim().to_string())
}

fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The names a cell lists after its key (`kind`: a, b (`field`), ...): every code span but the
/// first, leaving out the fields named in parentheses.
fn names(cell: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = cell;
    let mut before = ' ';
    let mut first = true;
    while let Some(open) = rest.find('`') {
        before = rest[..open].chars().last().unwrap_or(before);
        let after = &rest[open + 1..];
        let close = after.find('`').unwrap();
        if !first && before != '(' {
            out.push(after[..close].to_string());
        }
        first = false;
        rest = &after[close + 1..];
    }
    out
}

#[test]
fn the_fault_plans_the_readme_shows_are_the_simulators_formats() {
    let text = readme();
    let (intacct, powerbi) = row(&text, "fault plan");
    let plan: ml_sim_intacct::FaultPlan = serde_json::from_str(&code_spans(&intacct)[0]).unwrap();
    assert_eq!(plan.rules.len(), 1);
    let plan: ml_sim_powerbi::FaultPlan = serde_json::from_str(&code_spans(&powerbi)[0]).unwrap();
    assert_eq!(plan.rules.len(), 1);

    let (intacct, powerbi) = row(&text, "faults");
    let kinds = names(&intacct);
    assert!(kinds.len() >= 14, "{kinds:?}");
    for kind in kinds {
        let fault = serde_json::json!({"kind": kind, "millis": 1});
        serde_json::from_value::<ml_sim_intacct::Fault>(fault)
            .unwrap_or_else(|e| panic!("Intacct fault {kind}: {e}"));
    }
    let kinds = names(&powerbi);
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for kind in kinds {
        let fault =
            serde_json::json!({"type": kind, "status": 503, "retry_after_secs": 1, "millis": 1});
        serde_json::from_value::<ml_sim_powerbi::FaultKind>(fault)
            .unwrap_or_else(|e| panic!("Power BI fault {kind}: {e}"));
    }

    let (intacct, powerbi) = row(&text, "triggers");
    for when in names(&intacct) {
        let t = serde_json::json!({"when": when, "n": 1, "p": 0.5});
        serde_json::from_value::<ml_sim_intacct::FaultTrigger>(t)
            .unwrap_or_else(|e| panic!("Intacct trigger {when}: {e}"));
    }
    for kind in names(&powerbi) {
        let t = serde_json::json!({"type": kind, "n": 1, "p": 0.5, "requests": [1]});
        serde_json::from_value::<ml_sim_powerbi::Trigger>(t)
            .unwrap_or_else(|e| panic!("Power BI trigger {kind}: {e}"));
    }
}

#[test]
fn the_banners_print_valid_toml_and_the_admin_endpoints_the_readme_lists() {
    let text = readme();
    for (banner, section) in [
        (
            ml_connector_cli::demo::intacct_banner("http://127.0.0.1:18080/ia/xml/xmlgw.phtml"),
            "intacct",
        ),
        (
            ml_connector_cli::demo::powerbi_banner("http://127.0.0.1:18090"),
            "powerbi",
        ),
    ] {
        let toml_lines: Vec<&str> = banner.lines().filter(|l| l.contains(" = ")).collect();
        assert!(toml_lines.len() >= 5, "{banner}");
        let parsed: BTreeMap<String, toml::Value> = toml::from_str(&toml_lines.join("\n"))
            .unwrap_or_else(|e| {
                panic!("{section}: the banner's lines are not TOML ({e}):\n{banner}")
            });
        assert_eq!(parsed["allow_loopback_http"], toml::Value::Boolean(true));
        let admin = banner
            .lines()
            .find_map(|l| l.strip_prefix("admin: "))
            .unwrap_or_else(|| panic!("{banner}"));
        for endpoint in admin
            .trim_end_matches(" Ctrl-C stops.")
            .trim_end_matches('.')
            .split(", ")
        {
            let path = endpoint.split(' ').nth(1).unwrap();
            assert!(
                text.contains(path),
                "{section}: the README does not list {path}"
            );
        }
    }
}
