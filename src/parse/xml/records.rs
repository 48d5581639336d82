//! From collected items to records: which elements are records, and what each field
//! is called (per-source path mapping, else the leaf's own name).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::text::error_at;
use super::walk::{Collected, Item, Unit, configured_record};
use crate::parse::{ParseContext, ParseError, ParseOutput, Record};

/// Chooses the records and names their fields.
///
/// - A configured record element: each of its occurrences is a record, and the output is
///   a batch even with one record. None at all is an error (the source is misconfigured
///   or the vendor changed format; an empty batch would hide that).
/// - Otherwise, if two or more children of the root share a name and contain elements,
///   the children with that name are the records (the most frequent such name wins; on a
///   tie, the first to appear). Everything else in the document is an envelope and is
///   not part of any record.
/// - Otherwise the root is the single record.
pub(super) fn assemble(
    collected: Collected,
    cx: &ParseContext,
    text: &[u8],
) -> Result<ParseOutput, ParseError> {
    let paths: BTreeMap<&str, &str> =
        cx.xml_paths.iter().map(|(k, v)| (k.trim_matches('/'), v.as_str())).collect();
    let Collected { units, items, root_start } = collected;

    if let Some(record) = configured_record(cx) {
        if units.is_empty() {
            return Err(error_at(
                text,
                root_start,
                format!("no <{record}> element (the configured record element) in the document"),
            ));
        }
        let slots: Vec<_> = (0..units.len()).map(Some).collect();
        let records = group(items, &units, &slots, units.len(), &paths);
        return Ok(ParseOutput { records, batch: true });
    }

    let Some(name) = guess_record_name(&units) else {
        let record = items.into_iter().map(|item| field(item, 0, &paths)).collect();
        return Ok(ParseOutput { records: vec![record], batch: false });
    };
    let mut slots = Vec::with_capacity(units.len());
    let mut count = 0;
    for unit in &units {
        if unit.name == name {
            if count == cx.max_records {
                let max = cx.max_records;
                return Err(error_at(
                    text,
                    unit.start,
                    format!("more than {max} records (<{name}> elements) in one document"),
                ));
            }
            slots.push(Some(count));
            count += 1;
        } else {
            slots.push(None);
        }
    }
    let records = group(items, &units, &slots, count, &paths);
    Ok(ParseOutput { records, batch: true })
}

/// The name shared by the most children of the root that contain elements, if at least two.
fn guess_record_name(units: &[Unit]) -> Option<&str> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (index, unit) in units.iter().enumerate().filter(|(_, u)| u.has_children) {
        counts.entry(&unit.name).or_insert((0, index)).0 += 1;
    }
    counts
        .into_iter()
        .filter(|(_, (count, _))| *count >= 2)
        // Most records first, then the earliest.
        .max_by(|(_, (c1, i1)), (_, (c2, i2))| c1.cmp(c2).then(i2.cmp(i1)))
        .map(|(name, _)| name)
}

/// Distributes items over records: `slots[unit]` is the record a unit becomes, if any.
fn group(
    items: Vec<Item>,
    units: &[Unit],
    slots: &[Option<usize>],
    count: usize,
    paths: &BTreeMap<&str, &str>,
) -> Vec<Record> {
    let mut records = vec![Record::new(); count];
    for item in items {
        let Some(unit) = item.unit else { continue };
        let (Some(Some(slot)), Some(depth)) = (slots.get(unit), units.get(unit).map(|u| u.depth)) else {
            continue;
        };
        if let Some(record) = records.get_mut(*slot) {
            record.push(field(item, depth, paths));
        }
    }
    records
}

/// Names an item whose record element sits at `depth`. A mapping key may be written
/// relative to the record element (`contact/first_name`), starting with the record
/// element (`lead/contact/first_name`) or from the document root; the first that
/// matches wins. Unmapped items keep their last path segment (`first_name`,
/// `phone@type`).
fn field(item: Item, depth: usize, paths: &BTreeMap<&str, &str>) -> (String, Value) {
    let from_record = skip_segments(&item.path, depth);
    let relative = skip_segments(&item.path, depth + 1);
    let mapped = [relative, from_record, Some(item.path.as_str())]
        .into_iter()
        .flatten()
        .filter(|key| !key.is_empty())
        .find_map(|key| paths.get(key));
    let name = match mapped {
        Some(target) => (*target).to_owned(),
        None => item.path.rsplit('/').next().unwrap_or(&item.path).to_owned(),
    };
    (name, Value::String(item.value))
}

fn skip_segments(path: &str, n: usize) -> Option<&str> {
    let mut rest = path;
    for _ in 0..n {
        rest = rest.split_once('/')?.1;
    }
    Some(rest)
}
