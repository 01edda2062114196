//! A node's attributes as the operator library reads them.

use std::collections::BTreeMap;

use texpr_dsl::AnyTensor;
use texpr_ops::Attrs;

use crate::Attr;

/// A node's attributes, as the operator library reads them.
pub(crate) struct NodeAttrs<'a>(pub(crate) &'a BTreeMap<String, Attr>);

impl Attrs for NodeAttrs<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        match self.0.get(name) {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        }
    }

    fn float(&self, name: &str) -> Option<f32> {
        match self.0.get(name) {
            Some(Attr::Float(v)) => Some(*v),
            _ => None,
        }
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        match self.0.get(name) {
            Some(Attr::Ints(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        match self.0.get(name) {
            Some(Attr::Floats(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.0.get(name) {
            Some(Attr::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn tensor(&self, name: &str) -> Option<AnyTensor> {
        match self.0.get(name) {
            Some(Attr::Tensor(c)) => AnyTensor::from_le_bytes(c.dtype, &c.shape, &c.bytes).ok(),
            _ => None,
        }
    }
}
