//! The response envelope: `control`, `operation`, `authentication`, `result` and the
//! `errormessage` blocks that may sit at any of those levels, read leniently into
//! [`Response`].

use quick_xml::events::Event;

use super::DecodeError;
use super::events::{Ev, Parser, Source, map_xml_error};
use super::response::{
    Authentication, Control, DataAttrs, FunctionResult, Operation, Response, Status,
};
use super::sniff::html_error;
use crate::protocol::ErrorDetail;
use crate::protocol::values::{bracketed, parse_session_time};

impl<S: Source> Parser<'_, S> {
    pub(super) fn document(&mut self) -> Result<Response, DecodeError> {
        // Find the root element; text before it is only whitespace.
        loop {
            match self.next() {
                Ok(Ev::Start) => break,
                Ok(Ev::Empty) => {
                    return Err(if self.is("html") {
                        html_error()
                    } else {
                        DecodeError::NotEnvelope(self.name.clone())
                    });
                }
                Ok(Ev::Text) => {}
                Ok(Ev::End) => return Err(DecodeError::Malformed("end tag before root".into())),
                Err(DecodeError::Malformed(m)) if m == "unexpected end of document" => {
                    return Err(DecodeError::Empty);
                }
                Err(e) => return Err(e),
            }
        }
        if self.is("html") {
            return Err(html_error());
        }
        if !self.is("response") {
            return Err(DecodeError::NotEnvelope(self.name.clone()));
        }
        let mut resp = Response::default();
        loop {
            match self.next()? {
                Ev::Start if self.is("control") => resp.control = self.control()?,
                Ev::Start if self.is("operation") => {
                    let op = self.operation()?;
                    // Every client seen sends one operation; keep the first, read the others.
                    if resp.operation.is_none() {
                        resp.operation = Some(op);
                    }
                }
                Ev::Start if self.is("errormessage") => {
                    let errs = self.errormessage()?;
                    resp.errors.extend(errs);
                }
                Ev::Start if self.is("acknowledgement") => {
                    let mut status = Status::Missing;
                    self.leaves(|name, text| {
                        if name.eq_ignore_ascii_case("status") {
                            status = Status::parse(&text);
                        }
                    })?;
                    resp.acknowledgement = Some(status);
                }
                Ev::Start => self.skip()?,
                Ev::End => break,
                Ev::Empty | Ev::Text => {}
            }
        }
        // Anything after the root other than comments/whitespace is malformed; quick-xml checks
        // the rest, so read to the end to notice trailing garbage.
        loop {
            self.buf.clear();
            match self.reader.read(&mut self.buf).map_err(map_xml_error)? {
                Event::Eof => break,
                Event::Text(_) | Event::Comment(_) | Event::PI(_) => {}
                _ => {
                    return Err(DecodeError::Malformed(
                        "content after the root element".into(),
                    ));
                }
            }
        }
        Ok(resp)
    }

    fn control(&mut self) -> Result<Control, DecodeError> {
        let mut c = Control::default();
        self.leaves(|name, text| match name.to_ascii_lowercase().as_str() {
            "status" => c.status = Status::parse(&text),
            "senderid" => c.sender_id = text,
            "controlid" => c.control_id = text,
            "uniqueid" => c.unique_id = text,
            "dtdversion" => c.dtd_version = text,
            _ => {}
        })?;
        Ok(c)
    }

    fn authentication(&mut self) -> Result<Authentication, DecodeError> {
        let mut a = Authentication::default();
        self.leaves(|name, text| match name.to_ascii_lowercase().as_str() {
            "status" => a.status = Status::parse(&text),
            "userid" => a.user_id = text,
            "companyid" => a.company_id = text,
            "locationid" => a.location_id = Some(text),
            "sessiontimestamp" => a.session_timestamp = parse_session_time(&text),
            "sessiontimeout" => a.session_timeout = parse_session_time(&text),
            _ => {}
        })?;
        Ok(a)
    }

    fn errormessage(&mut self) -> Result<Vec<ErrorDetail>, DecodeError> {
        let mut out = Vec::new();
        loop {
            match self.next()? {
                Ev::Start if self.is("error") => {
                    let mut e = ErrorDetail::default();
                    self.leaves(|name, text| match name.to_ascii_lowercase().as_str() {
                        "errorno" => e.errorno = text.trim().to_owned(),
                        "description" => e.description = text,
                        "description2" => e.description2 = text,
                        "correction" => e.correction = text,
                        _ => {}
                    })?;
                    for t in [&e.description2, &e.description, &e.correction] {
                        if e.support_id.is_none() {
                            e.support_id = bracketed(t, "Support ID");
                        }
                        if e.request_id.is_none() {
                            e.request_id = bracketed(t, "Request ID");
                        }
                    }
                    out.push(e);
                }
                Ev::Start => self.skip()?,
                Ev::End => return Ok(out),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn operation(&mut self) -> Result<Operation, DecodeError> {
        let mut op = Operation::default();
        loop {
            match self.next()? {
                Ev::Start if self.is("authentication") => {
                    op.authentication = self.authentication()?
                }
                Ev::Start if self.is("errormessage") => {
                    let errs = self.errormessage()?;
                    op.errors.extend(errs);
                }
                Ev::Start if self.is("result") => {
                    let r = self.result()?;
                    op.results.push(r);
                    self.result_index += 1;
                }
                Ev::Start => self.skip()?,
                Ev::End => return Ok(op),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn result(&mut self) -> Result<FunctionResult, DecodeError> {
        let mut r = FunctionResult::default();
        loop {
            match self.next()? {
                Ev::Start if self.is("status") => r.status = Status::parse(&self.read_text()?),
                Ev::Start if self.is("function") => {
                    r.function = self.read_text()?.trim().to_owned()
                }
                Ev::Start if self.is("controlid") => r.control_id = self.read_text()?,
                Ev::Start if self.is("errormessage") => {
                    let errs = self.errormessage()?;
                    r.errors.extend(errs);
                }
                Ev::Start if self.is("data") => {
                    r.data = Some(self.data_attrs());
                    if r.function.eq_ignore_ascii_case("lookup") {
                        r.definition = self.lookup_data()?;
                    } else {
                        self.records(&mut r)?;
                    }
                }
                Ev::Empty if self.is("data") => r.data = Some(self.data_attrs()),
                Ev::Start => self.skip()?,
                Ev::End => return Ok(r),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn data_attrs(&self) -> DataAttrs {
        let mut d = DataAttrs::default();
        for (k, v) in self.attrs() {
            let num = || v.trim().parse::<u64>().ok();
            match k.to_ascii_lowercase().as_str() {
                "listtype" => d.list_type = Some(v.clone()),
                "count" => d.count = num(),
                "totalcount" => d.total_count = num(),
                "numremaining" => d.num_remaining = num(),
                "resultid" => d.result_id = Some(v.clone()),
                "offset" => d.offset = num(),
                _ => {}
            }
        }
        d
    }
}
