//! The catalog: tables, indexes, views and sequences, stored in the
//! database's own key space.
//!
//! Every schema object is one descriptor under the meta prefix
//! (`0x01 'o' <id>`), written by the DDL statement's own transaction, so DDL
//! is transactional. A shared in-memory cache serves lookups; a session's
//! uncommitted DDL lives in its [`Overlay`] until commit publishes it.
//!
//! Every object carries a version that DDL bumps, and tables a write version
//! that DDL bumps when writers must change what they do. A DML transaction
//! records the write versions of the tables it writes and commits only if they
//! are still current at its commit timestamp (checked by a commit fence when
//! the transaction outlives the schema lease); a schema change that reads or
//! rewrites existing rows first publishes a write-only index or a write fence
//! and waits out the lease, so no write can slip past it unseen on any node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{sqlstate, Result, SqlError};
use crate::types::DataType;

/// The first byte of every catalog and allocator key.
pub const META_PREFIX: u8 = 0x01;
/// The first byte of every table-data and index key.
pub const DATA_PREFIX: u8 = 0x02;

/// Identifies a schema object.
pub type ObjectId = u32;

/// A column of a table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnDesc {
    /// Stable column id: row encodings refer to columns by id, so dropping a
    /// column never renumbers the others.
    pub id: u32,
    /// Column name (lower-cased unless quoted).
    pub name: String,
    /// The column's type.
    #[serde(with = "type_code")]
    pub ty: DataType,
    /// False when the column is NOT NULL.
    pub nullable: bool,
    /// The DEFAULT expression as SQL text.
    pub default: Option<String>,
    /// Hidden columns (the implicit row id) are left out of `SELECT *`.
    pub hidden: bool,
}

/// A secondary index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexDesc {
    /// Index id, unique within its table; 0 is the primary key.
    pub id: u32,
    /// Index name, unique among the relations of the database.
    pub name: String,
    /// The indexed columns, by column id.
    pub columns: Vec<u32>,
    /// True for UNIQUE indexes.
    pub unique: bool,
    /// Whether queries may read the index yet.
    #[serde(default)]
    pub state: IndexState,
    /// True for the index of a UNIQUE constraint (as opposed to CREATE UNIQUE INDEX), which
    /// the PostgreSQL catalog lists in `pg_constraint` too.
    #[serde(default)]
    pub constraint: bool,
}

/// Where an index is in its life: writers maintain an index in every state, readers use only a
/// public one.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum IndexState {
    /// Complete: every row has its entry.
    #[default]
    Public,
    /// Being built online: writes maintain it, a backfill adds the entries of older rows, and
    /// no query reads it until the backfill ends and it turns public.
    WriteOnly,
}

/// A schema change in progress on a table: as `TableDesc::fence`, one that stops writes while
/// it reads and rewrites the table's rows (ALTER TABLE forms that check or rewrite data,
/// TRUNCATE), and writers wait for it to go; as `TableDesc::building`, an online index build,
/// which only other schema changes wait for. A mark whose schema change died goes by itself at
/// `until`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct WriteFence {
    /// The timestamp the fence expires at; the schema change must commit below it.
    pub until: u64,
}

/// A table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableDesc {
    /// Table id; also the key prefix of its rows.
    pub id: ObjectId,
    /// Table name.
    pub name: String,
    /// Columns in declaration order (hidden ones included).
    pub columns: Vec<ColumnDesc>,
    /// The primary key's column ids. A table declared without one has a
    /// hidden `rowid` column as its key.
    pub primary_key: Vec<u32>,
    /// The name of the primary key constraint, if declared.
    pub pk_name: Option<String>,
    /// Secondary indexes.
    pub indexes: Vec<IndexDesc>,
    /// The next column id to hand out.
    pub next_column_id: u32,
    /// The next index id to hand out.
    pub next_index_id: u32,
    /// Bumped by every schema change.
    pub version: u64,
    /// Bumped by every schema change that changes what writers of the table must do (columns,
    /// constraints, indexes to maintain, fences); not by renames or an index turning public.
    /// A transaction that wrote the table commits only if this is unchanged at its commit
    /// timestamp (see `docs/architecture/reef-sql.md`, "Schema changes across nodes").
    #[serde(default)]
    pub write_version: u64,
    /// A schema change holding writers off, if any.
    #[serde(default)]
    pub fence: Option<WriteFence>,
    /// An online schema change (an index build) in progress, if any: other schema changes of
    /// the table wait for it to end, writers do not. It expires like a fence.
    #[serde(default)]
    pub building: Option<WriteFence>,
    /// Row-count estimate from the last ANALYZE.
    #[serde(default)]
    pub row_estimate: Option<u64>,
}

/// A view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewDesc {
    /// View id.
    pub id: ObjectId,
    /// View name.
    pub name: String,
    /// The defining query as SQL text.
    pub query: String,
    /// Column names given in `CREATE VIEW v (a, b)`, if any.
    pub column_names: Vec<String>,
    /// Bumped by every change.
    pub version: u64,
}

/// A sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceDesc {
    /// Sequence id; also the key of its current value.
    pub id: ObjectId,
    /// Sequence name.
    pub name: String,
    /// Increment (non-zero).
    pub increment: i64,
    /// Smallest value.
    pub min_value: i64,
    /// Largest value.
    pub max_value: i64,
    /// First value.
    pub start: i64,
    /// Whether it wraps around.
    pub cycle: bool,
    /// The table column that owns it (for SERIAL), if any.
    pub owned_by: Option<(ObjectId, u32)>,
    /// Bumped by every change.
    pub version: u64,
}

/// Any schema object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Object {
    /// A table.
    Table(TableDesc),
    /// A view.
    View(ViewDesc),
    /// A sequence.
    Sequence(SequenceDesc),
}

impl Object {
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        match self {
            Object::Table(t) => t.id,
            Object::View(v) => v.id,
            Object::Sequence(s) => s.id,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Object::Table(t) => &t.name,
            Object::View(v) => &v.name,
            Object::Sequence(s) => &s.name,
        }
    }

    /// The object's version.
    pub fn version(&self) -> u64 {
        match self {
            Object::Table(t) => t.version,
            Object::View(v) => v.version,
            Object::Sequence(s) => s.version,
        }
    }

    /// PostgreSQL's word for the kind of relation, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Object::Table(_) => "table",
            Object::View(_) => "view",
            Object::Sequence(_) => "sequence",
        }
    }
}

impl TableDesc {
    /// The column with this name, with its position.
    pub fn column(&self, name: &str) -> Option<(usize, &ColumnDesc)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }

    /// The position of the column with this id.
    pub fn column_pos(&self, id: u32) -> Option<usize> {
        self.columns.iter().position(|c| c.id == id)
    }

    /// The positions of the primary key columns.
    pub fn pk_positions(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .map(|id| self.column_pos(*id).expect("primary key column exists"))
            .collect()
    }

    /// True if writers of a table described by `other` do what writers of this one do: the
    /// same columns (ids, types, constraints, defaults), key, indexes to maintain (whatever
    /// their state or name) and fence. Names and an index turning public do not count.
    pub fn same_write_shape(&self, other: &TableDesc) -> bool {
        let columns = |t: &TableDesc| -> Vec<(u32, DataType, bool, Option<String>, bool)> {
            t.columns
                .iter()
                .map(|c| (c.id, c.ty, c.nullable, c.default.clone(), c.hidden))
                .collect()
        };
        let indexes = |t: &TableDesc| -> Vec<(u32, Vec<u32>, bool)> {
            t.indexes
                .iter()
                .map(|i| (i.id, i.columns.clone(), i.unique))
                .collect()
        };
        columns(self) == columns(other)
            && self.primary_key == other.primary_key
            && indexes(self) == indexes(other)
            && self.fence == other.fence
    }

    /// True when the key is the hidden row id.
    pub fn has_hidden_key(&self) -> bool {
        self.primary_key.len() == 1
            && self
                .column_pos(self.primary_key[0])
                .map(|p| self.columns[p].hidden)
                .unwrap_or(false)
    }
}

/// The key of an object's descriptor.
pub fn object_key(id: ObjectId) -> Vec<u8> {
    let mut k = vec![META_PREFIX, b'o'];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The key range holding every descriptor.
pub fn object_key_range() -> (Vec<u8>, Vec<u8>) {
    (vec![META_PREFIX, b'o'], vec![META_PREFIX, b'o' + 1])
}

/// The key every DDL transaction writes (with its start timestamp): a node that finds a value
/// other than the one its cached catalog was loaded with reloads the catalog, so a schema
/// change made on one node is visible on all. Writing one key also makes concurrent DDL
/// transactions conflict, wherever they run.
pub fn version_key() -> Vec<u8> {
    vec![META_PREFIX, b'v']
}

/// The key of the object-id allocator.
pub fn next_id_key() -> Vec<u8> {
    vec![META_PREFIX, b'n']
}

/// The key of a counter (sequence value or row-id allocator) for an object.
pub fn counter_key(id: ObjectId) -> Vec<u8> {
    let mut k = vec![META_PREFIX, b'c'];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The prefix of every key of one index (0 = primary) of a table.
pub fn index_prefix(table: ObjectId, index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.push(DATA_PREFIX);
    k.extend_from_slice(&table.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The key range of one whole table, all indexes included.
pub fn table_range(table: ObjectId) -> (Vec<u8>, Vec<u8>) {
    let mut start = vec![DATA_PREFIX];
    start.extend_from_slice(&table.to_be_bytes());
    let mut end = vec![DATA_PREFIX];
    end.extend_from_slice(&(table as u64 + 1).to_be_bytes()[4..]);
    if table == u32::MAX {
        end = vec![DATA_PREFIX + 1];
    }
    (start, end)
}

/// Encodes a descriptor for storage.
pub fn encode_object(obj: &Object) -> Vec<u8> {
    serde_json::to_vec(obj).expect("descriptors always serialise")
}

/// Decodes a stored descriptor.
pub fn decode_object(bytes: &[u8]) -> Result<Object> {
    serde_json::from_slice(bytes)
        .map_err(|e| SqlError::internal(format!("corrupt catalog descriptor: {e}")))
}

/// The committed catalog shared by all sessions of a node.
pub struct Catalog {
    state: RwLock<CatalogState>,
    /// Counts the changes to `state`: a plan bound at one generation is valid while the
    /// generation stays (see `session::PlanSlot`).
    generation: AtomicU64,
    /// Held by a session whose transaction changes the schema, so this node's schema changes
    /// run one at a time.
    pub ddl_lock: Arc<parking_lot::Mutex<()>>,
    /// Fills the system views in (`reef_catalog.*`).
    system: RwLock<Option<Arc<dyn crate::system::SystemViews>>>,
}

#[derive(Default, Clone)]
struct CatalogState {
    by_id: HashMap<ObjectId, Arc<Object>>,
    by_name: HashMap<String, ObjectId>,
    /// Index name -> owning table id.
    index_names: HashMap<String, ObjectId>,
}

impl CatalogState {
    fn insert(&mut self, obj: Arc<Object>) {
        self.remove(obj.id());
        if let Object::Table(t) = &*obj {
            for idx in &t.indexes {
                self.index_names.insert(idx.name.clone(), t.id);
            }
            if let Some(pk) = &t.pk_name {
                self.index_names.insert(pk.clone(), t.id);
            }
        }
        self.by_name.insert(obj.name().to_string(), obj.id());
        self.by_id.insert(obj.id(), obj);
    }

    fn remove(&mut self, id: ObjectId) {
        if let Some(old) = self.by_id.remove(&id) {
            self.by_name.remove(old.name());
            self.index_names.retain(|_, t| *t != id);
        }
    }
}

impl Catalog {
    /// Builds the catalog from every stored descriptor.
    pub fn load(objects: Vec<Object>) -> Catalog {
        let mut state = CatalogState::default();
        for o in objects {
            state.insert(Arc::new(o));
        }
        Catalog {
            state: RwLock::new(state),
            generation: AtomicU64::new(0),
            ddl_lock: Arc::new(parking_lot::Mutex::new(())),
            system: RwLock::new(None),
        }
    }

    /// Sets what fills the system views in.
    pub fn set_system_views(&self, views: Arc<dyn crate::system::SystemViews>) {
        *self.system.write() = Some(views);
    }

    /// The rows of system view `name` (none without a filler).
    pub fn system_rows(&self, name: &str) -> Result<Vec<Vec<crate::types::Value>>> {
        match self.system.read().clone() {
            Some(views) => views.rows(name),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces every object by `objects`, as loaded from a snapshot.
    pub fn replace(&self, objects: Vec<Object>) {
        let mut state = CatalogState::default();
        for o in objects {
            state.insert(Arc::new(o));
        }
        let mut current = self.state.write();
        *current = state;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The number of changes so far. Read it before binding against the catalog: a change
    /// made while binding moves it past what the binder was given.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes a committed change: `Some` replaces or adds, `None` removes.
    pub fn publish(&self, changes: &HashMap<ObjectId, Option<Arc<Object>>>) {
        let mut state = self.state.write();
        for (id, change) in changes {
            match change {
                Some(obj) => state.insert(obj.clone()),
                None => state.remove(*id),
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Every committed object.
    pub fn objects(&self) -> Vec<Arc<Object>> {
        let state = self.state.read();
        let mut v: Vec<_> = state.by_id.values().cloned().collect();
        v.sort_by_key(|o| o.id());
        v
    }

    /// The committed object with this name.
    pub fn get_by_name(&self, name: &str) -> Option<Arc<Object>> {
        let state = self.state.read();
        state
            .by_name
            .get(name)
            .and_then(|id| state.by_id.get(id))
            .cloned()
    }

    /// The committed object with this id.
    pub fn get(&self, id: ObjectId) -> Option<Arc<Object>> {
        self.state.read().by_id.get(&id).cloned()
    }

    /// The table that owns the index with this name.
    pub fn index_owner(&self, name: &str) -> Option<ObjectId> {
        self.state.read().index_names.get(name).copied()
    }
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog::load(Vec::new())
    }
}

/// A session's uncommitted catalog changes, layered over the shared catalog.
#[derive(Default, Clone)]
pub struct Overlay {
    /// Changed objects by id: `None` means dropped.
    pub changes: HashMap<ObjectId, Option<Arc<Object>>>,
    /// Steps of online schema changes that this transaction committed ahead of itself (a
    /// write-only index, a write fence), to take back if it does not commit.
    pub undo: Vec<SchemaStep>,
    /// The end of the earliest write fence this transaction holds: it must commit before it.
    pub fence_deadline: Option<u64>,
    /// Tables whose schema change committed a step ahead of this transaction (see
    /// `StmtCtx::fence_table`), with the step's commit timestamp: the final descriptor is
    /// based on that step, and conflicts only with changes committed after it.
    pub based_at: HashMap<ObjectId, u64>,
}

/// A schema change step committed ahead of the transaction that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaStep {
    /// A write-only index added to a table, to drop again, and the mark of the build.
    WriteOnlyIndex {
        /// The table.
        table: ObjectId,
        /// The index id.
        index: u32,
        /// The table's `building` mark the build set.
        mark: WriteFence,
    },
    /// A write fence put on a table, to lift again.
    Fence {
        /// The table.
        table: ObjectId,
        /// The fence.
        fence: WriteFence,
    },
}

/// A view of the catalog as one session sees it: committed objects plus its
/// own uncommitted changes.
#[derive(Clone, Copy)]
pub struct CatalogView<'a> {
    /// The shared catalog.
    pub catalog: &'a Catalog,
    /// The session's uncommitted changes.
    pub overlay: &'a Overlay,
}

impl<'a> CatalogView<'a> {
    /// Looks an object up by name.
    pub fn get_by_name(&self, name: &str) -> Option<Arc<Object>> {
        for o in self.overlay.changes.values().flatten() {
            if o.name() == name {
                return Some(o.clone());
            }
        }
        let obj = self.catalog.get_by_name(name)?;
        match self.overlay.changes.get(&obj.id()) {
            Some(_) => None, // renamed or dropped in this transaction
            None => Some(obj),
        }
    }

    /// Looks an object up by id.
    pub fn get(&self, id: ObjectId) -> Option<Arc<Object>> {
        match self.overlay.changes.get(&id) {
            Some(change) => change.clone(),
            None => self.catalog.get(id),
        }
    }

    /// Looks a table up by name; errors 42P01 if there is none, 42809 if the
    /// name is another kind of object.
    pub fn table(&self, name: &str) -> Result<Arc<TableDesc>> {
        match self.get_by_name(name) {
            Some(obj) => match &*obj {
                Object::Table(t) => Ok(Arc::new(t.clone())),
                other => Err(SqlError::new(
                    sqlstate::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a table but a {}", other.kind_name()),
                )),
            },
            None => Err(undefined_table(name)),
        }
    }

    /// Every object visible to the session.
    pub fn objects(&self) -> Vec<Arc<Object>> {
        let mut out: Vec<Arc<Object>> = self
            .catalog
            .objects()
            .into_iter()
            .filter(|o| !self.overlay.changes.contains_key(&o.id()))
            .collect();
        out.extend(self.overlay.changes.values().flatten().cloned());
        out.sort_by_key(|o| o.id());
        out
    }

    /// The table owning an index with this name.
    pub fn index_owner(&self, name: &str) -> Option<Arc<TableDesc>> {
        for o in self.objects() {
            if let Object::Table(t) = &*o {
                if t.indexes.iter().any(|i| i.name == name) || t.pk_name.as_deref() == Some(name) {
                    return Some(Arc::new(t.clone()));
                }
            }
        }
        None
    }

    /// True if any relation or index already uses the name.
    pub fn name_taken(&self, name: &str) -> bool {
        self.get_by_name(name).is_some() || self.index_owner(name).is_some()
    }
}

/// The error for a missing relation.
pub fn undefined_table(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_TABLE,
        format!("relation \"{name}\" does not exist"),
    )
}

/// Stores a `DataType` as a short, stable text code in descriptors.
pub(crate) mod type_code {
    use super::DataType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ty: &DataType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(ty))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DataType, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown type code {s}")))
    }

    pub fn encode(ty: &DataType) -> String {
        match ty {
            DataType::Bool => "bool".into(),
            DataType::Int16 => "int2".into(),
            DataType::Int32 => "int4".into(),
            DataType::Int64 => "int8".into(),
            DataType::Float32 => "float4".into(),
            DataType::Float64 => "float8".into(),
            DataType::Numeric(None) => "numeric".into(),
            DataType::Numeric(Some((p, s))) => format!("numeric:{p}:{s}"),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "varchar".into(),
            DataType::Varchar(Some(n)) => format!("varchar:{n}"),
            DataType::Char(n) => format!("char:{n}"),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Timestamp => "timestamp".into(),
            DataType::TimestampTz => "timestamptz".into(),
            DataType::Interval => "interval".into(),
            DataType::Unknown => "unknown".into(),
            DataType::Int2Vector => "int2vector".into(),
            // No column has a record type; a stored one would read back as unknown.
            DataType::Record(_) => "unknown".into(),
            DataType::Array(e) => format!("array/{}", encode(e)),
        }
    }

    pub fn decode(s: &str) -> Option<DataType> {
        if let Some(e) = s.strip_prefix("array/") {
            return Some(DataType::array_of(decode(e)?));
        }
        let mut parts = s.split(':');
        let head = parts.next()?;
        let a: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let b: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        Some(match head {
            "bool" => DataType::Bool,
            "int2" => DataType::Int16,
            "int4" => DataType::Int32,
            "int8" => DataType::Int64,
            "float4" => DataType::Float32,
            "float8" => DataType::Float64,
            "numeric" => DataType::Numeric(a.zip(b)),
            "text" => DataType::Text,
            "varchar" => DataType::Varchar(a),
            "char" => DataType::Char(a?),
            "bytea" => DataType::Bytea,
            "date" => DataType::Date,
            "timestamp" => DataType::Timestamp,
            "timestamptz" => DataType::TimestampTz,
            "interval" => DataType::Interval,
            "unknown" => DataType::Unknown,
            "int2vector" => DataType::Int2Vector,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trip() {
        let t = Object::Table(TableDesc {
            id: 7,
            name: "t".into(),
            columns: vec![ColumnDesc {
                id: 1,
                name: "a".into(),
                ty: DataType::Numeric(Some((10, 2))),
                nullable: false,
                default: Some("0".into()),
                hidden: false,
            }],
            primary_key: vec![1],
            pk_name: Some("t_pkey".into()),
            indexes: vec![],
            next_column_id: 2,
            next_index_id: 1,
            version: 3,
            write_version: 2,
            fence: Some(WriteFence { until: 99 }),
            building: None,
            row_estimate: None,
        });
        assert_eq!(decode_object(&encode_object(&t)).unwrap(), t);
    }

    #[test]
    fn table_ranges_do_not_overlap() {
        let (s1, e1) = table_range(1);
        let (s2, _) = table_range(2);
        assert!(s1 < e1 && e1 <= s2);
        assert!(index_prefix(1, 5) > s1 && index_prefix(1, 5) < e1);
    }
}
