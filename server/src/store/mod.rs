//! The store's own upkeep rules, used by live ingest and by the background
//! jobs alike: the running totals (`counts`), the `nodes` table (`nodes`),
//! and which rows each is already kept for while a backfill computes the
//! rest ([`Coverage`], [`Upkeep`]).

pub mod counts;
pub mod nodes;
pub mod regions;

/// What a migration has covered of the transmission ids (see
/// `Engine::coverage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every id: the migration is done.
    All,
    /// Ids up to `cursor` (processed) and above `max_id` (never visited);
    /// the ones between are still to come.
    Outside { cursor: i64, max_id: i64 },
    /// None: not started, or ended without finishing.
    Nothing,
}

impl Coverage {
    /// Whether live ingest must keep the migration's result for row `id`.
    pub fn covers(self, id: i64) -> bool {
        match self {
            Coverage::All => true,
            Coverage::Outside { cursor, max_id } => id <= cursor || id > max_id,
            Coverage::Nothing => false,
        }
    }
}

/// Which transmission ids live ingest keeps up for each migration that
/// computes something (see `Engine::coverage`): the rest is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upkeep {
    /// `transmissions.observation_count` and the totals (`counts_backfill_v1`).
    pub counts: Coverage,
    /// The `nodes` table (`nodes_backfill_v1`).
    pub nodes: Coverage,
    /// The regions that heard each node (`node_regions_v1`).
    pub regions: Coverage,
}

impl Default for Upkeep {
    /// Nothing covered: before the engine has said otherwise.
    fn default() -> Self {
        Upkeep {
            counts: Coverage::Nothing,
            nodes: Coverage::Nothing,
            regions: Coverage::Nothing,
        }
    }
}

impl Upkeep {
    /// Whether the maintained counts (`_meshscope_counters`,
    /// `transmissions.observation_count`) are exact for every row: the API
    /// serves them as numbers and retention may adjust them.
    pub fn counts_ready(self) -> bool {
        self.counts == Coverage::All
    }

    /// Everything covered: a file whose migrations are all done.
    pub const ALL: Upkeep = Upkeep {
        counts: Coverage::All,
        nodes: Coverage::All,
        regions: Coverage::All,
    };
}
