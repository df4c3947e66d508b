//! The tag-name dictionary: every tag name ever stored gets a dense [`NameId`].
//!
//! Records and indexes refer to names by id, so a name's text is stored once.
//! The dictionary counts how many things use each name (for statistics and for
//! the tag-spam cap): an id is reused for another name only once no thing uses
//! it ([`Names::recycle`], when the registry is at its cap of distinct names),
//! so an id read from a live record always names the same tag.

use hashbrown::HashMap;

use crate::tag::TagName;

/// Dense id of a tag name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameId(pub u32);

/// Tag name <-> [`NameId`], with a count of things using each name.
#[derive(Debug, Default)]
pub struct Names {
    by_name: HashMap<TagName, NameId>,
    names: Vec<(TagName, u64)>,
    /// Where the next search for an unused id to recycle starts.
    recycle_from: usize,
}

impl Names {
    /// The id of a name, if any thing ever used it.
    pub fn get(&self, name: &str) -> Option<NameId> {
        self.by_name.get(name).copied()
    }

    /// The id of a name, allocating one if it is new.
    pub fn intern(&mut self, name: &TagName) -> NameId {
        if let Some(&id) = self.by_name.get(name.as_str()) {
            return id;
        }
        let id = NameId(self.names.len() as u32);
        self.names.push((name.clone(), 0));
        self.by_name.insert(name.clone(), id);
        id
    }

    /// How many names have an id (used or not).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name has an id.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Gives the id of a name no thing uses any more (other than `keep`) to
    /// `name`, which must be new. Only correct while use counts are exact (not
    /// during a bulk load, which counts uses at its end). Returns `None` when
    /// every id is in use.
    pub fn recycle(&mut self, name: &TagName, keep: Option<NameId>) -> Option<NameId> {
        let n = self.names.len();
        for step in 0..n {
            let i = (self.recycle_from + step) % n;
            if self.names[i].1 == 0 && keep != Some(NameId(i as u32)) {
                self.recycle_from = i + 1;
                let old = std::mem::replace(&mut self.names[i].0, name.clone());
                self.by_name.remove(old.as_str());
                self.by_name.insert(name.clone(), NameId(i as u32));
                return Some(NameId(i as u32));
            }
        }
        None
    }

    /// The name of an id.
    pub fn name(&self, id: NameId) -> &TagName {
        &self.names[id.0 as usize].0
    }

    /// Counts one more thing using this name.
    pub fn add_use(&mut self, id: NameId) {
        self.names[id.0 as usize].1 += 1;
    }

    /// Counts one thing fewer using this name.
    pub fn drop_use(&mut self, id: NameId) {
        let n = &mut self.names[id.0 as usize].1;
        *n = n.saturating_sub(1);
    }

    /// Sets every use count to zero (before a recount).
    pub fn clear_uses(&mut self) {
        for (_, n) in &mut self.names {
            *n = 0;
        }
    }

    /// How many things use this name.
    pub fn uses(&self, id: NameId) -> u64 {
        self.names[id.0 as usize].1
    }

    /// How many distinct names are in use by at least one thing.
    pub fn in_use(&self) -> usize {
        self.names.iter().filter(|(_, n)| *n > 0).count()
    }

    /// Every name with its use count, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NameId, &TagName, u64)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, (n, c))| (NameId(i as u32), n, *c))
    }

    /// The ids of the names in use (by at least one thing) that `pred` accepts,
    /// in id order: how `nameWildcard` finds its tags without looking at things.
    pub fn matching<'s>(
        &'s self,
        pred: impl Fn(&str) -> bool + 's,
    ) -> impl Iterator<Item = NameId> + 's {
        self.names
            .iter()
            .enumerate()
            .filter(move |(_, (n, uses))| *uses > 0 && pred(n.as_str()))
            .map(|(i, _)| NameId(i as u32))
    }

    /// Heap bytes held, approximately.
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity() * std::mem::size_of::<(TagName, u64)>()
            + self.by_name.capacity() * (std::mem::size_of::<(TagName, NameId)>() + 1)
            + self
                .names
                .iter()
                .map(|(n, _)| n.as_str().len() * 2)
                .sum::<usize>()
    }
}
