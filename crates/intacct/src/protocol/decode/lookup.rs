//! The `lookup` answer: an object's `<Type>` with its field definitions and relationships,
//! the one result whose `<data>` holds a definition instead of a list of records.

use super::DecodeError;
use super::events::{Ev, Parser, Source};
use super::response::{FieldDef, ObjectDefinition};

impl<S: Source> Parser<'_, S> {
    pub(super) fn lookup_data(&mut self) -> Result<Option<ObjectDefinition>, DecodeError> {
        let mut def = None;
        loop {
            match self.next()? {
                Ev::Start if self.is("Type") => {
                    let mut d = ObjectDefinition::default();
                    for (k, v) in self.attrs() {
                        if k.eq_ignore_ascii_case("Name") {
                            d.name = v;
                        } else if k.eq_ignore_ascii_case("DocumentType") {
                            d.document_type = v;
                        }
                    }
                    self.type_body(&mut d)?;
                    def.get_or_insert(d);
                }
                Ev::Start => self.skip()?,
                Ev::End => return Ok(def),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn type_body(&mut self, d: &mut ObjectDefinition) -> Result<(), DecodeError> {
        loop {
            match self.next()? {
                Ev::Start if self.is("Fields") => loop {
                    match self.next()? {
                        Ev::Start if self.is("Field") => {
                            let f = self.field_def()?;
                            d.fields.push(f);
                        }
                        Ev::Start => self.skip()?,
                        Ev::End => break,
                        Ev::Empty | Ev::Text => {}
                    }
                },
                Ev::Start if self.is("Relationships") => loop {
                    match self.next()? {
                        Ev::Start => {
                            let rec = self.record()?;
                            d.relationships.push(rec);
                        }
                        Ev::End => break,
                        Ev::Empty | Ev::Text => {}
                    }
                },
                Ev::Start => self.skip()?,
                Ev::End => return Ok(()),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn field_def(&mut self) -> Result<FieldDef, DecodeError> {
        let mut f = FieldDef::default();
        let truthy = |t: &str| t.trim().eq_ignore_ascii_case("true");
        loop {
            match self.next()? {
                Ev::Start if self.is("VALIDVALUES") => {
                    let mut vals = Vec::new();
                    self.leaves(|_, text| vals.push(text))?;
                    f.valid_values = vals;
                }
                Ev::Start => {
                    let name = self.name.to_ascii_uppercase();
                    let text = self.read_text()?;
                    match name.as_str() {
                        "ID" => f.id = text,
                        "LABEL" => f.label = text,
                        "DESCRIPTION" => f.description = text,
                        "DATATYPE" => f.data_type = text,
                        "REQUIRED" => f.required = truthy(&text),
                        "READONLY" => f.read_only = truthy(&text),
                        "ISCUSTOM" => f.is_custom = truthy(&text),
                        _ => {}
                    }
                }
                Ev::End => return Ok(f),
                Ev::Empty | Ev::Text => {}
            }
        }
    }
}
