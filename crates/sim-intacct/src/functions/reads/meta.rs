//! lookup (an object's field definitions) and readUserFormatting (a user's locale settings).

use super::*;

pub(in crate::functions) fn lookup(state: &Arc<State>, object: &str) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    // lookup succeeds even without read permission (Estuary's observation).
    Outcome::data(0, move |x| {
        x.open_attrs("data", &[("listtype", "All"), ("count", "1")]);
        x.open_attrs("Type", &[("Name", def.name), ("DocumentType", "")]);
        x.open("Fields");
        for f in def.fields {
            x.open("Field");
            x.leaf("ID", f.id);
            x.leaf("LABEL", f.label);
            x.leaf("DESCRIPTION", f.label);
            x.leaf("REQUIRED", if f.required { "true" } else { "false" });
            x.leaf("READONLY", if f.readonly { "true" } else { "false" });
            x.leaf("DATATYPE", f.ty.lookup_name());
            x.leaf("ISCUSTOM", if f.custom { "true" } else { "false" });
            if !f.valid.is_empty() {
                x.open("VALIDVALUES");
                for (_, v) in f.valid {
                    x.leaf("VALIDVALUE", v);
                }
                x.close("VALIDVALUES");
            }
            x.close("Field");
        }
        x.close("Fields");
        x.open("Relationships");
        x.close("Relationships");
        x.close("Type");
        x.close("data");
    })
}

pub(in crate::functions) fn user_formatting(state: &Arc<State>, key: &str) -> Outcome {
    let def = object_def("USERINFO").expect("USERINFO defined");
    let store = state.store.read().expect("store lock");
    let login_i = def.field_index("LOGINID").expect("field");
    let mut found = false;
    store.scan(def, |r| {
        found |= r.key.to_string() == key || r.text(login_i) == key
    });
    drop(store);
    if !found {
        return Outcome::fail(vec![ErrorItem::new(
            "BL01001973",
            "",
            &format!("User {key} not found {}", sid(state)),
            "",
        )]);
    }
    let gmt = state.clock.offset_hours();
    Outcome::data(1, move |x| {
        x.open("data");
        x.open("userformatting");
        x.leaf("locale", "en_US");
        x.leaf("dateformat", "/mdY");
        x.leaf("clock", "24");
        x.leaf("gmtoffset", &format!("{gmt}"));
        x.leaf("currencyformat", "USD");
        x.close("userformatting");
        x.close("data");
    })
}
