//! The RocksDB implementation of [`Engine`].

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBRawIteratorWithThreadMode, Options, ReadOptions, WriteOptions, DB,
};

use crate::{BatchOp, Cf, Cursor, Engine, EngineSnapshot, Result, StorageError, WriteBatch};

/// Tuning options for [`RocksEngine::open`].
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The size of the block cache shared by all column families.
    pub block_cache_bytes: usize,
    /// The memtable size of each column family.
    pub write_buffer_bytes: usize,
    /// The most memory all memtables together may use (0: no bound beyond each column
    /// family's own); past it RocksDB flushes the largest.
    pub memtable_budget_bytes: usize,
    /// The number of background flush and compaction threads.
    pub max_background_jobs: i32,
    /// Compresses SST files with LZ4.
    pub compression: bool,
    /// Keeps index and filter blocks in the block cache, where they count against its size.
    /// Off (RocksDB's default), each open table file holds its own in memory: about 2 % of the
    /// data, but never read again. On, once they outgrow the cache every lookup reads and
    /// decompresses them again (a 10-million-row load spent most of its time doing that).
    pub cache_index_blocks: bool,
    /// Bloom filter bits per key on the lock and write column families (0 disables them).
    pub bloom_bits_per_key: f64,
    /// Writes go through the write-ahead log. A scratch engine whose contents are thrown
    /// away on restart turns it off.
    pub wal: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
            memtable_budget_bytes: 256 << 20,
            max_background_jobs: 4,
            compression: true,
            cache_index_blocks: false,
            bloom_bits_per_key: 10.0,
            wal: true,
        }
    }
}

impl From<rocksdb::Error> for StorageError {
    fn from(err: rocksdb::Error) -> StorageError {
        match err.kind() {
            rocksdb::ErrorKind::Corruption => StorageError::Corruption(err.into_string()),
            _ => StorageError::Engine(err.into_string()),
        }
    }
}

/// A storage engine backed by a RocksDB database with one column family per [`Cf`].
///
/// It is `Send + Sync`; share it with `Arc<RocksEngine>` (or `Arc<dyn Engine>`).
pub struct RocksEngine {
    db: DB,
    path: PathBuf,
    wal: bool,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.path)
            .finish()
    }
}

impl RocksEngine {
    /// Opens (creating if missing) the database at `path`, creating any missing column families.
    pub fn open(path: &Path, opts: &EngineOptions) -> Result<RocksEngine> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
        db_opts.increase_parallelism(threads.max(2));
        db_opts.set_max_background_jobs(opts.max_background_jobs.max(2));
        db_opts.set_bytes_per_sync(1 << 20);
        if opts.memtable_budget_bytes > 0 {
            let manager = rocksdb::WriteBufferManager::new_write_buffer_manager(
                opts.memtable_budget_bytes,
                false,
            );
            db_opts.set_write_buffer_manager(&manager);
        }

        let cache = Cache::new_lru_cache(opts.block_cache_bytes.max(1 << 20));
        let descriptors = Cf::ALL.iter().map(|&cf| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_format_version(5);
            table.set_cache_index_and_filter_blocks(opts.cache_index_blocks);
            table.set_pin_l0_filter_and_index_blocks_in_cache(opts.cache_index_blocks);
            if matches!(cf, Cf::Lock | Cf::Write) && opts.bloom_bits_per_key > 0.0 {
                table.set_bloom_filter(opts.bloom_bits_per_key, false);
            }
            let mut cf_opts = Options::default();
            cf_opts.set_block_based_table_factory(&table);
            if cf == Cf::Lock && opts.bloom_bits_per_key > 0.0 {
                // Every read asks the lock column family for its key, and the key is almost
                // never there: a Bloom filter over the memtable's keys answers without
                // searching its skip list (point lookups only; scans are unaffected).
                cf_opts.set_memtable_whole_key_filtering(true);
                cf_opts.set_memtable_prefix_bloom_ratio(0.02);
            }
            cf_opts.set_write_buffer_size(opts.write_buffer_bytes.max(1 << 20));
            let compression = if opts.compression {
                DBCompressionType::Lz4
            } else {
                DBCompressionType::None
            };
            // The first two levels are rewritten soon by compaction: compressing them costs
            // more CPU than the space it saves (the layout TiKV uses).
            let none = DBCompressionType::None;
            cf_opts.set_compression_per_level(&[
                none,
                none,
                compression,
                compression,
                compression,
                compression,
                compression,
            ]);
            cf_opts.set_bottommost_compression_type(compression);
            ColumnFamilyDescriptor::new(cf.name(), cf_opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors).map_err(|err| {
            StorageError::Open {
                path: path.display().to_string(),
                message: err.into_string(),
            }
        })?;
        Ok(RocksEngine {
            db,
            path: path.to_path_buf(),
            wal: opts.wal,
        })
    }

    fn handle(&self, cf: Cf) -> &ColumnFamily {
        // Every Cf is created by open(), so a missing handle is a broken invariant.
        self.db
            .cf_handle(cf.name())
            .expect("column family created at open")
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get_pinned_cf(self.handle(cf), key)?
            .map(|value| value.to_vec()))
    }

    fn get_into(&self, cf: Cf, key: &[u8], buf: &mut Vec<u8>) -> Result<bool> {
        buf.clear();
        match self.db.get_pinned_cf(self.handle(cf), key)? {
            Some(value) => {
                buf.extend_from_slice(&value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn cursor(&self, cf: Cf, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_> {
        let read_opts = bounded(lower, upper);
        Box::new(RocksCursor {
            iter: self.db.raw_iterator_cf_opt(self.handle(cf), read_opts),
        })
    }

    fn property(&self, name: &str) -> Option<u64> {
        let mut total = None;
        for cf in Cf::ALL {
            if let Ok(Some(v)) = self.db.property_int_value_cf(self.handle(cf), name) {
                total = Some(total.unwrap_or(0) + v);
            }
        }
        total
    }

    fn snapshot(&self) -> Box<dyn EngineSnapshot + '_> {
        Box::new(RocksSnapshot {
            engine: self,
            snapshot: self.db.snapshot(),
        })
    }

    fn write(&self, batch: &WriteBatch, sync: bool) -> Result<()> {
        let mut rocks_batch = rocksdb::WriteBatch::with_capacity_bytes(batch.size_bytes() + 64);
        for op in batch.iter() {
            match op {
                BatchOp::Put { cf, key, value } => rocks_batch.put_cf(self.handle(cf), key, value),
                BatchOp::Delete { cf, key } => rocks_batch.delete_cf(self.handle(cf), key),
                BatchOp::DeleteRange { cf, start, end } => {
                    rocks_batch.delete_range_cf(self.handle(cf), start, end)
                }
            }
        }
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(sync && self.wal);
        write_opts.disable_wal(!self.wal);
        self.db.write_opt(rocks_batch, &write_opts)?;
        Ok(())
    }

    fn sync_wal(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }

    fn approximate_size(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<u64> {
        let sizes = self
            .db
            .get_approximate_sizes_cf(self.handle(cf), &[rocksdb::Range::new(start, end)]);
        Ok(sizes.first().copied().unwrap_or(0))
    }

    fn compact_range(&self, cf: Cf, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.db.compact_range_cf(self.handle(cf), start, end);
        Ok(())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// A [`Cursor`] over a RocksDB raw iterator.
/// Read options bounding a cursor to `lower <= key < upper`.
fn bounded(lower: Option<&[u8]>, upper: Option<&[u8]>) -> ReadOptions {
    let mut read_opts = ReadOptions::default();
    if let Some(lower) = lower {
        read_opts.set_iterate_lower_bound(lower);
    }
    if let Some(upper) = upper {
        read_opts.set_iterate_upper_bound(upper);
    }
    read_opts
}

/// A RocksDB snapshot.
struct RocksSnapshot<'a> {
    engine: &'a RocksEngine,
    snapshot: rocksdb::SnapshotWithThreadMode<'a, DB>,
}

impl EngineSnapshot for RocksSnapshot<'_> {
    fn cursor(&self, cf: Cf, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_> {
        let mut read_opts = bounded(lower, upper);
        read_opts.set_snapshot(&self.snapshot);
        Box::new(RocksCursor {
            iter: self
                .engine
                .db
                .raw_iterator_cf_opt(self.engine.handle(cf), read_opts),
        })
    }
}

struct RocksCursor<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
}

impl Cursor for RocksCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.iter.seek(key);
    }

    fn seek_to_first(&mut self) {
        self.iter.seek_to_first();
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        self.iter.seek_for_prev(key);
    }

    fn seek_to_last(&mut self) {
        self.iter.seek_to_last();
    }

    fn valid(&self) -> bool {
        self.iter.valid()
    }

    fn key(&self) -> &[u8] {
        self.iter.key().unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.iter.value().unwrap_or(&[])
    }

    fn next(&mut self) {
        if self.iter.valid() {
            self.iter.next();
        }
    }

    fn prev(&mut self) {
        if self.iter.valid() {
            self.iter.prev();
        }
    }

    fn status(&self) -> Result<()> {
        Ok(self.iter.status()?)
    }
}
