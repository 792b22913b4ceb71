//! The PostgreSQL catalog that drivers, ORMs and tools read: the relations of `pg_catalog`
//! (`pg_class`, `pg_attribute`, `pg_type`, `pg_index`, ...) and the views of
//! `information_schema`, computed from reefdb's own catalog.
//!
//! Nothing here is stored. When a statement names `pg_catalog.pg_class` (or plain `pg_class`,
//! which no user relation shadows), the binder asks [`rows`] for the relation's rows as the
//! statement's catalog view sees them (committed objects plus the session's own uncommitted
//! DDL) and scans them like the rows of a system view of `reef_catalog`: filters, joins,
//! aggregates and ORDER BY work on them as on any table, and they are read-only. The
//! `information_schema` views are SQL over these relations ([`INFORMATION_SCHEMA_VIEWS`]),
//! bound like user views.
//!
//! Object identifiers are stable and derived from reefdb's object ids, the same in every
//! relation: a table, view or sequence is `16384 + id` ([`object_oid`]); an index, including
//! the primary key's (index id 0, as in the key layout), is [`index_oid`] of its table and index
//! ids, and the constraint an index backs is [`constraint_oid`]. Built-in types keep their
//! PostgreSQL OIDs, and so do the catalog relations clients name by OID. Column types follow
//! PostgreSQL's where reefdb has the type; `oid` columns are `bigint`, `name` and `"char"`
//! columns are `text`, `int2vector` is its own type and the other arrays are arrays.
//!
//! What PostgreSQL stores as expression trees (`pg_attrdef.adbin`, `pg_index.indpred`) is SQL
//! text here, so `pg_get_expr` returns its argument. Relations reefdb has nothing for
//! (policies, triggers, publications, inheritance, ...) exist and are empty, since `psql`'s
//! `\d` reads them on every call.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::catalog::{CatalogView, IndexDesc, Object, ObjectId, TableDesc};
use crate::expr::{Expr, SessionFunc};
use crate::types::{DataType, Value};

/// The schema of the catalog relations.
pub const SCHEMA: &str = "pg_catalog";
/// The schema of the SQL-standard views.
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// OID of the schema `pg_catalog`.
pub const NS_PG_CATALOG: i64 = 11;
/// OID of the schema `public`, where every user object lives.
pub const NS_PUBLIC: i64 = 2200;
/// OID of the schema `information_schema`.
pub const NS_INFORMATION_SCHEMA: i64 = 13000;
/// OID of the schema `reef_catalog` (the system views).
pub const NS_REEF_CATALOG: i64 = 13001;
/// OID of the role `reef`, the one superuser.
pub const ROLE_REEF: i64 = 10;
/// OID of the role `pg_database_owner`, which owns `public` as in PostgreSQL 15.
pub const ROLE_DATABASE_OWNER: i64 = 6171;
/// OID of the database `reef`.
pub const DATABASE_OID: i64 = 16383;
const AM_HEAP: i64 = 2;
const AM_BTREE: i64 = 403;
/// The collation text columns have.
const COLLATION_DEFAULT: i64 = 100;
/// `pg_proc` OID of `array_in`, the input function of every array type.
pub const ARRAY_IN: i64 = 750;
/// OIDs of the first user object, as in PostgreSQL.
const FIRST_USER_OID: i64 = 16384;
const INDEX_OID_BASE: i64 = 1 << 30;
const CONSTRAINT_OID_BASE: i64 = 1 << 31;
const ATTRDEF_OID_BASE: i64 = 3 << 30;
const OPCLASS_OID_BASE: i64 = 10000;

/// The OID of a table, view or sequence.
pub fn object_oid(id: ObjectId) -> i64 {
    FIRST_USER_OID + id as i64
}

/// The OID of index `index` of table `table` (0 is the primary key). Stays below 2^32 for
/// table ids below 2^20 and index ids below 1024.
pub fn index_oid(table: ObjectId, index: u32) -> i64 {
    INDEX_OID_BASE + ((table as i64) << 10) + index as i64
}

/// The OID of the constraint (primary key or UNIQUE) backed by an index.
pub fn constraint_oid(table: ObjectId, index: u32) -> i64 {
    CONSTRAINT_OID_BASE + ((table as i64) << 10) + index as i64
}

fn attrdef_oid(table: ObjectId, attnum: usize) -> i64 {
    ATTRDEF_OID_BASE + ((table as i64) << 10) + attnum as i64
}

/// A built-in type as `pg_type` lists it.
pub struct TypeRow {
    /// OID.
    pub oid: i64,
    /// `typname`.
    pub name: &'static str,
    /// `typlen`.
    pub len: i16,
    /// `typcategory`.
    pub category: &'static str,
    /// The array type's OID (0 for arrays).
    pub array: i64,
    /// The element type's OID (arrays and vectors).
    pub elem: i64,
    /// True for the string types, whose columns have a collation.
    pub collatable: bool,
}

const fn ty(
    oid: i64,
    name: &'static str,
    len: i16,
    category: &'static str,
    array: i64,
    elem: i64,
    collatable: bool,
) -> TypeRow {
    TypeRow {
        oid,
        name,
        len,
        category,
        array,
        elem,
        collatable,
    }
}

/// The types `pg_type` lists: what reefdb supports, what its catalog uses, and their arrays.
pub const TYPES: &[TypeRow] = &[
    ty(16, "bool", 1, "B", 1000, 0, false),
    ty(17, "bytea", -1, "U", 1001, 0, false),
    ty(18, "char", 1, "Z", 1002, 0, false),
    ty(19, "name", 64, "S", 1003, 18, true),
    ty(20, "int8", 8, "N", 1016, 0, false),
    ty(21, "int2", 2, "N", 1005, 0, false),
    ty(22, "int2vector", -1, "A", 1006, 21, false),
    ty(23, "int4", 4, "N", 1007, 0, false),
    ty(24, "regproc", 4, "N", 1008, 0, false),
    ty(25, "text", -1, "S", 1009, 0, true),
    ty(26, "oid", 4, "N", 1028, 0, false),
    ty(30, "oidvector", -1, "A", 1013, 26, false),
    ty(114, "json", -1, "U", 199, 0, false),
    ty(700, "float4", 4, "N", 1021, 0, false),
    ty(701, "float8", 8, "N", 1022, 0, false),
    ty(705, "unknown", -2, "X", 0, 0, false),
    ty(1042, "bpchar", -1, "S", 1014, 0, true),
    ty(1043, "varchar", -1, "S", 1015, 0, true),
    ty(1082, "date", 4, "D", 1182, 0, false),
    ty(1114, "timestamp", 8, "D", 1115, 0, false),
    ty(1184, "timestamptz", 8, "D", 1185, 0, false),
    ty(1186, "interval", 16, "T", 1187, 0, false),
    ty(1700, "numeric", -1, "N", 1231, 0, false),
    ty(2205, "regclass", 4, "N", 2210, 0, false),
    ty(2206, "regtype", 4, "N", 2211, 0, false),
    ty(4089, "regnamespace", 4, "N", 4090, 0, false),
    ty(2249, "record", -1, "P", 2287, 0, false),
    ty(2278, "void", 4, "P", 0, 0, false),
    ty(2277, "anyarray", -1, "P", 0, 0, false),
];

/// The type with this OID, as `pg_type` lists it (arrays included).
pub fn type_name(oid: i64) -> Option<String> {
    for t in TYPES {
        if t.oid == oid {
            return Some(t.name.to_string());
        }
        if t.array == oid {
            return Some(format!("_{}", t.name));
        }
    }
    None
}

/// A relation of `pg_catalog`: its name, OID, kind (`r` table, `v` view) and columns, written
/// `name:type` with the catalog's types (`oid`, `name`, `char`, `int2v`, `oidv` and arrays
/// as `type[]`).
pub struct Relation {
    /// The name inside [`SCHEMA`].
    pub name: &'static str,
    /// Its OID.
    pub oid: i64,
    /// `r` or `v`.
    pub kind: &'static str,
    spec: &'static str,
}

const fn rel(name: &'static str, oid: i64, kind: &'static str, spec: &'static str) -> Relation {
    Relation {
        name,
        oid,
        kind,
        spec,
    }
}

/// Every relation of `pg_catalog`.
pub const RELATIONS: &[Relation] = &[
    rel(
        "pg_namespace",
        2615,
        "r",
        "oid:oid nspname:name nspowner:oid nspacl:text[]",
    ),
    rel(
        "pg_class",
        1259,
        "r",
        "oid:oid relname:name relnamespace:oid reltype:oid reloftype:oid relowner:oid \
         relam:oid relfilenode:oid reltablespace:oid relpages:int4 reltuples:float4 \
         relallvisible:int4 reltoastrelid:oid relhasindex:bool relisshared:bool \
         relpersistence:char relkind:char relnatts:int2 relchecks:int2 relhasrules:bool \
         relhastriggers:bool relhassubclass:bool relrowsecurity:bool \
         relforcerowsecurity:bool relispopulated:bool relreplident:char relispartition:bool \
         relrewrite:oid relfrozenxid:int8 relminmxid:int8 relacl:text[] reloptions:text[] \
         relpartbound:text",
    ),
    rel(
        "pg_attribute",
        1249,
        "r",
        "attrelid:oid attname:name atttypid:oid attstattarget:int4 attlen:int2 attnum:int2 \
         attndims:int4 attcacheoff:int4 atttypmod:int4 attbyval:bool attalign:char \
         attstorage:char attcompression:char attnotnull:bool atthasdef:bool \
         atthasmissing:bool attidentity:char attgenerated:char attisdropped:bool \
         attislocal:bool attinhcount:int4 attcollation:oid attacl:text[] attoptions:text[] \
         attfdwoptions:text[] attmissingval:text[]",
    ),
    rel(
        "pg_type",
        1247,
        "r",
        "oid:oid typname:name typnamespace:oid typowner:oid typlen:int2 typbyval:bool \
         typtype:char typcategory:char typispreferred:bool typisdefined:bool typdelim:char \
         typrelid:oid typsubscript:oid typelem:oid typarray:oid typinput:oid typoutput:oid \
         typreceive:oid typsend:oid typmodin:oid typmodout:oid typanalyze:oid typalign:char \
         typstorage:char typnotnull:bool typbasetype:oid typtypmod:int4 typndims:int4 \
         typcollation:oid typdefaultbin:text typdefault:text typacl:text[]",
    ),
    rel(
        "pg_index",
        2610,
        "r",
        "indexrelid:oid indrelid:oid indnatts:int2 indnkeyatts:int2 indisunique:bool \
         indnullsnotdistinct:bool indisprimary:bool indisexclusion:bool indimmediate:bool \
         indisclustered:bool indisvalid:bool indcheckxmin:bool indisready:bool \
         indislive:bool indisreplident:bool indkey:int2v indcollation:oid[] indclass:oid[] \
         indoption:int2v indexprs:text indpred:text",
    ),
    rel(
        "pg_constraint",
        2606,
        "r",
        "oid:oid conname:name connamespace:oid contype:char condeferrable:bool \
         condeferred:bool convalidated:bool conrelid:oid contypid:oid conindid:oid \
         conparentid:oid confrelid:oid confupdtype:char confdeltype:char \
         confmatchtype:char conislocal:bool coninhcount:int4 connoinherit:bool \
         conkey:int2[] confkey:int2[] conpfeqop:oid[] conppeqop:oid[] conffeqop:oid[] \
         confdelsetcols:int2[] conexclop:oid[] conbin:text",
    ),
    rel(
        "pg_attrdef",
        2604,
        "r",
        "oid:oid adrelid:oid adnum:int2 adbin:text",
    ),
    rel(
        "pg_description",
        2609,
        "r",
        "objoid:oid classoid:oid objsubid:int4 description:text",
    ),
    rel(
        "pg_am",
        2601,
        "r",
        "oid:oid amname:name amhandler:oid amtype:char",
    ),
    rel(
        "pg_inherits",
        2611,
        "r",
        "inhrelid:oid inhparent:oid inhseqno:int4 inhdetachpending:bool",
    ),
    rel(
        "pg_database",
        1262,
        "r",
        "oid:oid datname:name datdba:oid encoding:int4 datlocprovider:char \
         datistemplate:bool datallowconn:bool datconnlimit:int4 datfrozenxid:int8 \
         datminmxid:int8 dattablespace:oid datcollate:text datctype:text daticulocale:text \
         datcollversion:text datacl:text[]",
    ),
    rel(
        "pg_settings",
        12001,
        "v",
        "name:text setting:text unit:text category:text short_desc:text extra_desc:text \
         context:text vartype:text source:text min_val:text max_val:text enumvals:text[] \
         boot_val:text reset_val:text sourcefile:text sourceline:int4 pending_restart:bool",
    ),
    rel(
        "pg_roles",
        12002,
        "v",
        "rolname:name rolsuper:bool rolinherit:bool rolcreaterole:bool rolcreatedb:bool \
         rolcanlogin:bool rolreplication:bool rolconnlimit:int4 rolpassword:text \
         rolvaliduntil:timestamptz rolbypassrls:bool rolconfig:text[] oid:oid",
    ),
    rel(
        "pg_user",
        12003,
        "v",
        "usename:name usesysid:oid usecreatedb:bool usesuper:bool userepl:bool \
         usebypassrls:bool passwd:text valuntil:timestamptz useconfig:text[]",
    ),
    rel(
        "pg_authid",
        1260,
        "r",
        "oid:oid rolname:name rolsuper:bool rolinherit:bool rolcreaterole:bool \
         rolcreatedb:bool rolcanlogin:bool rolreplication:bool rolbypassrls:bool \
         rolconnlimit:int4 rolpassword:text rolvaliduntil:timestamptz",
    ),
    rel(
        "pg_auth_members",
        1261,
        "r",
        "roleid:oid member:oid grantor:oid admin_option:bool",
    ),
    rel(
        "pg_proc",
        1255,
        "r",
        "oid:oid proname:name pronamespace:oid proowner:oid prolang:oid procost:float4 \
         prorows:float4 provariadic:oid prosupport:oid prokind:char prosecdef:bool \
         proleakproof:bool proisstrict:bool proretset:bool provolatile:char \
         proparallel:char pronargs:int2 pronargdefaults:int2 prorettype:oid \
         proargtypes:oid[] proallargtypes:oid[] proargmodes:char[] proargnames:text[] \
         proargdefaults:text protrftypes:oid[] prosrc:text probin:text prosqlbody:text \
         proconfig:text[] proacl:text[]",
    ),
    rel(
        "pg_collation",
        3456,
        "r",
        "oid:oid collname:name collnamespace:oid collowner:oid collprovider:char \
         collisdeterministic:bool collencoding:int4 collcollate:text collctype:text \
         colliculocale:text collversion:text",
    ),
    rel(
        "pg_tablespace",
        1213,
        "r",
        "oid:oid spcname:name spcowner:oid spcacl:text[] spcoptions:text[]",
    ),
    rel(
        "pg_opclass",
        2616,
        "r",
        "oid:oid opcmethod:oid opcname:name opcnamespace:oid opcowner:oid opcfamily:oid \
         opcintype:oid opcdefault:bool opckeytype:oid",
    ),
    rel(
        "pg_sequence",
        2224,
        "r",
        "seqrelid:oid seqtypid:oid seqstart:int8 seqincrement:int8 seqmax:int8 seqmin:int8 \
         seqcache:int8 seqcycle:bool",
    ),
    rel(
        "pg_enum",
        3501,
        "r",
        "oid:oid enumtypid:oid enumsortorder:float4 enumlabel:name",
    ),
    rel(
        "pg_extension",
        3079,
        "r",
        "oid:oid extname:name extowner:oid extnamespace:oid extrelocatable:bool \
         extversion:text extconfig:oid[] extcondition:text[]",
    ),
    rel(
        "pg_partitioned_table",
        3350,
        "r",
        "partrelid:oid partstrat:char partnatts:int2 partdefid:oid partattrs:int2v \
         partclass:oid[] partcollation:oid[] partexprs:text",
    ),
    rel(
        "pg_policy",
        3256,
        "r",
        "oid:oid polname:name polrelid:oid polcmd:char polpermissive:bool polroles:oid[] \
         polqual:text polwithcheck:text",
    ),
    rel(
        "pg_statistic_ext",
        3381,
        "r",
        "oid:oid stxrelid:oid stxname:name stxnamespace:oid stxowner:oid \
         stxstattarget:int4 stxkeys:int2v stxkind:char[] stxexprs:text",
    ),
    rel(
        "pg_publication",
        6104,
        "r",
        "oid:oid pubname:name pubowner:oid puballtables:bool pubinsert:bool \
         pubupdate:bool pubdelete:bool pubtruncate:bool pubviaroot:bool",
    ),
    rel(
        "pg_publication_rel",
        6106,
        "r",
        "oid:oid prpubid:oid prrelid:oid prqual:text prattrs:int2v",
    ),
    rel(
        "pg_publication_namespace",
        6237,
        "r",
        "oid:oid pnpubid:oid pnnspid:oid",
    ),
    rel(
        "pg_trigger",
        2620,
        "r",
        "oid:oid tgrelid:oid tgparentid:oid tgname:name tgfoid:oid tgtype:int2 \
         tgenabled:char tgisinternal:bool tgconstrrelid:oid tgconstrindid:oid \
         tgconstraint:oid tgdeferrable:bool tginitdeferred:bool tgnargs:int2 tgattr:int2v \
         tgargs:bytea tgqual:text tgoldtable:name tgnewtable:name",
    ),
    rel(
        "pg_rewrite",
        2618,
        "r",
        "oid:oid rulename:name ev_class:oid ev_type:char ev_enabled:char is_instead:bool \
         ev_qual:text ev_action:text",
    ),
    rel(
        "pg_depend",
        2608,
        "r",
        "classid:oid objid:oid objsubid:int4 refclassid:oid refobjid:oid refobjsubid:int4 \
         deptype:char",
    ),
    rel(
        "pg_tables",
        12004,
        "v",
        "schemaname:name tablename:name tableowner:name tablespace:name hasindexes:bool \
         hasrules:bool hastriggers:bool rowsecurity:bool",
    ),
    rel(
        "pg_views",
        12005,
        "v",
        "schemaname:name viewname:name viewowner:name definition:text",
    ),
    rel(
        "pg_indexes",
        12006,
        "v",
        "schemaname:name tablename:name indexname:name tablespace:name indexdef:text",
    ),
    rel(
        "pg_sequences",
        12007,
        "v",
        "schemaname:name sequencename:name sequenceowner:name data_type:regtype \
         start_value:int8 min_value:int8 max_value:int8 increment_by:int8 cycle:bool \
         cache_size:int8 last_value:int8",
    ),
];

/// The `information_schema` views, as SQL over `pg_catalog`.
pub const INFORMATION_SCHEMA_VIEWS: &[(&str, &str)] = &[
    (
        "schemata",
        "SELECT 'reef'::text AS catalog_name, n.nspname AS schema_name, \
         'reef'::text AS schema_owner, NULL::text AS default_character_set_catalog, \
         NULL::text AS default_character_set_schema, NULL::text AS default_character_set_name, \
         NULL::text AS sql_path \
         FROM pg_catalog.pg_namespace n",
    ),
    (
        "tables",
        "SELECT 'reef'::text AS table_catalog, n.nspname AS table_schema, \
         c.relname AS table_name, \
         CASE WHEN n.nspname IN ('pg_catalog', 'information_schema', 'reef_catalog') \
              AND c.relkind = 'r' THEN 'SYSTEM TABLE' \
              WHEN c.relkind = 'r' THEN 'BASE TABLE' ELSE 'VIEW' END AS table_type, \
         NULL::text AS self_referencing_column_name, NULL::text AS reference_generation, \
         NULL::text AS user_defined_type_catalog, NULL::text AS user_defined_type_schema, \
         NULL::text AS user_defined_type_name, \
         CASE WHEN c.relkind = 'r' AND n.nspname = 'public' THEN 'YES' ELSE 'NO' END \
           AS is_insertable_into, \
         'NO'::text AS is_typed, NULL::text AS commit_action \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'v')",
    ),
    (
        "columns",
        "SELECT 'reef'::text AS table_catalog, n.nspname AS table_schema, \
         c.relname AS table_name, a.attname AS column_name, \
         a.attnum::int4 AS ordinal_position, d.adbin AS column_default, \
         CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable, \
         CASE WHEN t.typcategory = 'A' THEN 'ARRAY' \
              ELSE pg_catalog.format_type(a.atttypid, NULL) END AS data_type, \
         pg_catalog.reef_character_maximum_length(a.atttypid, a.atttypmod) \
           AS character_maximum_length, \
         pg_catalog.reef_character_octet_length(a.atttypid, a.atttypmod) \
           AS character_octet_length, \
         pg_catalog.reef_numeric_precision(a.atttypid, a.atttypmod) AS numeric_precision, \
         pg_catalog.reef_numeric_precision_radix(a.atttypid) AS numeric_precision_radix, \
         pg_catalog.reef_numeric_scale(a.atttypid, a.atttypmod) AS numeric_scale, \
         pg_catalog.reef_datetime_precision(a.atttypid, a.atttypmod) AS datetime_precision, \
         NULL::text AS interval_type, NULL::int4 AS interval_precision, \
         NULL::text AS character_set_catalog, NULL::text AS character_set_schema, \
         NULL::text AS character_set_name, NULL::text AS collation_catalog, \
         NULL::text AS collation_schema, NULL::text AS collation_name, \
         NULL::text AS domain_catalog, NULL::text AS domain_schema, NULL::text AS domain_name, \
         'reef'::text AS udt_catalog, 'pg_catalog'::text AS udt_schema, \
         t.typname AS udt_name, NULL::text AS scope_catalog, NULL::text AS scope_schema, \
         NULL::text AS scope_name, NULL::int4 AS maximum_cardinality, \
         a.attnum::text AS dtd_identifier, 'NO'::text AS is_self_referencing, \
         'NO'::text AS is_identity, NULL::text AS identity_generation, \
         NULL::text AS identity_start, NULL::text AS identity_increment, \
         NULL::text AS identity_maximum, NULL::text AS identity_minimum, \
         NULL::text AS identity_cycle, 'NEVER'::text AS is_generated, \
         NULL::text AS generation_expression, \
         CASE WHEN c.relkind = 'r' THEN 'YES' ELSE 'NO' END AS is_updatable \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v')",
    ),
    (
        "table_constraints",
        "SELECT 'reef'::text AS constraint_catalog, n.nspname AS constraint_schema, \
         con.conname AS constraint_name, 'reef'::text AS table_catalog, \
         n.nspname AS table_schema, c.relname AS table_name, \
         CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' \
              WHEN 'f' THEN 'FOREIGN KEY' WHEN 'c' THEN 'CHECK' END AS constraint_type, \
         'NO'::text AS is_deferrable, 'NO'::text AS initially_deferred, \
         'YES'::text AS enforced, NULL::text AS nulls_distinct \
         FROM pg_catalog.pg_constraint con \
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
    ),
    (
        "key_column_usage",
        "SELECT 'reef'::text AS constraint_catalog, n.nspname AS constraint_schema, \
         con.conname AS constraint_name, 'reef'::text AS table_catalog, \
         n.nspname AS table_schema, c.relname AS table_name, a.attname AS column_name, \
         k.n::int4 AS ordinal_position, NULL::int4 AS position_in_unique_constraint \
         FROM pg_catalog.pg_constraint con \
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN (SELECT oid AS conoid, unnest(conkey) AS attnum, \
                      generate_subscripts(conkey, 1) AS n \
               FROM pg_catalog.pg_constraint) k ON k.conoid = con.oid \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
         WHERE con.contype IN ('p', 'u', 'f')",
    ),
    (
        "views",
        "SELECT 'reef'::text AS table_catalog, n.nspname AS table_schema, \
         c.relname AS table_name, pg_catalog.pg_get_viewdef(c.oid) AS view_definition, \
         'NONE'::text AS check_option, 'NO'::text AS is_updatable, \
         'NO'::text AS is_insertable_into, 'NO'::text AS is_trigger_updatable, \
         'NO'::text AS is_trigger_deletable, 'NO'::text AS is_trigger_insertable_into \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'v' AND n.nspname = 'public'",
    ),
    (
        "sequences",
        "SELECT 'reef'::text AS sequence_catalog, n.nspname AS sequence_schema, \
         c.relname AS sequence_name, 'bigint'::text AS data_type, \
         64 AS numeric_precision, 2 AS numeric_precision_radix, 0 AS numeric_scale, \
         s.seqstart::text AS start_value, s.seqmin::text AS minimum_value, \
         s.seqmax::text AS maximum_value, s.seqincrement::text AS increment, \
         CASE WHEN s.seqcycle THEN 'YES' ELSE 'NO' END AS cycle_option \
         FROM pg_catalog.pg_sequence s \
         JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
    ),
];

/// The `information_schema` view `name`, as SQL.
pub fn information_schema_view(name: &str) -> Option<&'static str> {
    INFORMATION_SCHEMA_VIEWS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, q)| *q)
}

/// The relation of `pg_catalog` named `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Relation> {
    RELATIONS.iter().find(|r| r.name == name)
}

fn spec_type(t: &str) -> (DataType, i64) {
    // The second value is the PostgreSQL type OID the column has there.
    match t {
        "oid" => (DataType::Int64, 26),
        "name" => (DataType::Text, 19),
        "char" => (DataType::Text, 18),
        "text" => (DataType::Text, 25),
        "bool" => (DataType::Bool, 16),
        "int2" => (DataType::Int16, 21),
        "int4" => (DataType::Int32, 23),
        "int8" => (DataType::Int64, 20),
        "float4" => (DataType::Float32, 700),
        "bytea" => (DataType::Bytea, 17),
        "timestamptz" => (DataType::TimestampTz, 1184),
        "regtype" => (DataType::Text, 2206),
        "int2v" => (DataType::Int2Vector, 22),
        "oid[]" => (DataType::array_of(DataType::Int64), 1028),
        "int2[]" => (DataType::array_of(DataType::Int16), 1005),
        "char[]" => (DataType::array_of(DataType::Text), 1002),
        "text[]" => (DataType::array_of(DataType::Text), 1009),
        other => unreachable!("pg_catalog column type {other}"),
    }
}

/// A column of a catalog relation.
pub struct CatalogColumn {
    /// Its name.
    pub name: &'static str,
    /// Its type in reefdb.
    pub ty: DataType,
    /// The catalog's own type name (`oid`, `name`, `char`, ...): what a value defaults to.
    pub kind: &'static str,
    /// The OID of its type in PostgreSQL.
    pub pg_oid: i64,
}

impl Relation {
    /// The relation's columns.
    pub fn columns(&self) -> &'static [CatalogColumn] {
        static COLUMNS: OnceLock<Vec<Vec<CatalogColumn>>> = OnceLock::new();
        let all = COLUMNS.get_or_init(|| {
            RELATIONS
                .iter()
                .map(|r| {
                    r.spec
                        .split_whitespace()
                        .map(|c| {
                            let (name, kind) = c.split_once(':').unwrap_or((c, "text"));
                            let (ty, pg_oid) = spec_type(kind);
                            CatalogColumn {
                                name,
                                ty,
                                kind,
                                pg_oid,
                            }
                        })
                        .collect()
                })
                .collect()
        });
        let i = RELATIONS
            .iter()
            .position(|r| r.name == self.name)
            .unwrap_or(0);
        &all[i]
    }
}

/// A row under construction: every column starts at the catalog's neutral value (0 for OIDs
/// and numbers, false, `''` for `"char"`, NULL otherwise) and is set by name.
struct RowBuilder {
    cols: &'static [CatalogColumn],
    values: Vec<Expr>,
}

impl RowBuilder {
    fn new(rel: &Relation) -> Self {
        let cols = rel.columns();
        let values = cols
            .iter()
            .map(|c| {
                Expr::Literal(match c.kind {
                    "oid" | "int8" => Value::Int64(0),
                    "int4" => Value::Int32(0),
                    "int2" => Value::Int16(0),
                    "float4" => Value::Float32(0.0),
                    "bool" => Value::Bool(false),
                    "char" => Value::Text(String::new()),
                    _ => Value::Null,
                })
            })
            .collect();
        RowBuilder { cols, values }
    }

    fn set(mut self, name: &str, v: impl Into<Value>) -> Self {
        if let Some(i) = self.cols.iter().position(|c| c.name == name) {
            self.values[i] = Expr::Literal(v.into());
        } else {
            debug_assert!(false, "no catalog column {name}");
        }
        self
    }

    fn set_expr(mut self, name: &str, x: Expr) -> Self {
        if let Some(i) = self.cols.iter().position(|c| c.name == name) {
            self.values[i] = x;
        }
        self
    }

    fn done(self) -> Vec<Expr> {
        self.values
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int64(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int32(i)
    }
}

impl From<i16> for Value {
    fn from(i: i16) -> Value {
        Value::Int16(i)
    }
}

fn int2s(xs: impl IntoIterator<Item = i16>) -> Value {
    Value::Array(xs.into_iter().map(Value::Int16).collect())
}

/// A column of a relation as `pg_attribute` lists it.
pub struct RelColumn {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: DataType,
    /// PostgreSQL type OID (catalog columns keep theirs).
    pub type_oid: i64,
    /// NOT NULL.
    pub not_null: bool,
    /// The DEFAULT expression as SQL.
    pub default: Option<String>,
}

/// A relation as `pg_class` lists it.
pub struct RelInfo {
    /// OID.
    pub oid: i64,
    /// Name.
    pub name: String,
    /// Schema OID.
    pub namespace: i64,
    /// `relkind`.
    pub kind: &'static str,
    /// Columns (for an index, the indexed ones).
    pub columns: Vec<RelColumn>,
    /// For a table: whether it has indexes.
    pub has_index: bool,
    /// For a table: its row estimate.
    pub tuples: f32,
}

/// The user's objects as one statement sees them, and what `pg_catalog` needs beyond them.
pub struct Snapshot {
    /// Tables, views and sequences.
    pub objects: Vec<Arc<Object>>,
    /// The column names and types of each view (bound from its query), when they were asked
    /// for.
    pub view_types: HashMap<ObjectId, Vec<(String, DataType)>>,
    /// The system views of `reef_catalog`.
    pub system_views: Vec<(&'static str, Vec<(String, DataType)>)>,
}

impl Snapshot {
    /// The objects a catalog view sees; view column types are added by the caller.
    pub fn new(view: &CatalogView) -> Snapshot {
        Snapshot {
            objects: view.objects(),
            view_types: HashMap::new(),
            system_views: crate::system::VIEWS
                .iter()
                .map(|v| {
                    (
                        v.name,
                        v.columns.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
                    )
                })
                .collect(),
        }
    }

    fn tables(&self) -> impl Iterator<Item = &TableDesc> {
        self.objects.iter().filter_map(|o| match &**o {
            Object::Table(t) => Some(t),
            _ => None,
        })
    }

    /// Every relation `pg_class` lists: user tables, their indexes, views and sequences, then
    /// the catalog's own relations and the system views.
    pub fn relations(&self) -> Vec<RelInfo> {
        let mut out = Vec::new();
        for o in &self.objects {
            match &**o {
                Object::Table(t) => {
                    out.push(RelInfo {
                        oid: object_oid(t.id),
                        name: t.name.clone(),
                        namespace: NS_PUBLIC,
                        kind: "r",
                        columns: visible_columns(t)
                            .map(|c| RelColumn {
                                name: c.name.clone(),
                                ty: c.ty,
                                type_oid: c.ty.oid() as i64,
                                not_null: !c.nullable,
                                default: c.default.clone(),
                            })
                            .collect(),
                        has_index: !t.has_hidden_key() || !t.indexes.is_empty(),
                        tuples: t.row_estimate.map(|n| n as f32).unwrap_or(-1.0),
                    });
                    for (index, name, cols) in indexes(t) {
                        out.push(RelInfo {
                            oid: index_oid(t.id, index),
                            name,
                            namespace: NS_PUBLIC,
                            kind: "i",
                            columns: cols
                                .iter()
                                .filter_map(|id| t.column_pos(*id))
                                .map(|p| {
                                    let c = &t.columns[p];
                                    RelColumn {
                                        name: c.name.clone(),
                                        ty: c.ty,
                                        type_oid: c.ty.oid() as i64,
                                        not_null: false,
                                        default: None,
                                    }
                                })
                                .collect(),
                            has_index: false,
                            tuples: -1.0,
                        });
                    }
                }
                Object::View(v) => {
                    // Declared names win over the query's own; types come from the query.
                    let bound = self.view_types.get(&v.id);
                    let count = bound.map(Vec::len).unwrap_or(0).max(v.column_names.len());
                    out.push(RelInfo {
                        oid: object_oid(v.id),
                        name: v.name.clone(),
                        namespace: NS_PUBLIC,
                        kind: "v",
                        columns: (0..count)
                            .map(|i| {
                                let from_query = bound.and_then(|b| b.get(i));
                                let ty = from_query.map(|(_, t)| *t).unwrap_or(DataType::Text);
                                let name = v
                                    .column_names
                                    .get(i)
                                    .cloned()
                                    .or_else(|| from_query.map(|(n, _)| n.clone()))
                                    .unwrap_or_default();
                                RelColumn {
                                    name,
                                    ty,
                                    type_oid: ty.oid() as i64,
                                    not_null: false,
                                    default: None,
                                }
                            })
                            .collect(),
                        has_index: false,
                        tuples: -1.0,
                    });
                }
                Object::Sequence(s) => {
                    out.push(RelInfo {
                        oid: object_oid(s.id),
                        name: s.name.clone(),
                        namespace: NS_PUBLIC,
                        kind: "S",
                        columns: ["last_value", "log_cnt"]
                            .iter()
                            .map(|n| RelColumn {
                                name: n.to_string(),
                                ty: DataType::Int64,
                                type_oid: 20,
                                not_null: true,
                                default: None,
                            })
                            .chain(std::iter::once(RelColumn {
                                name: "is_called".into(),
                                ty: DataType::Bool,
                                type_oid: 16,
                                not_null: true,
                                default: None,
                            }))
                            .collect(),
                        has_index: false,
                        tuples: 1.0,
                    });
                }
            }
        }
        for r in RELATIONS {
            out.push(RelInfo {
                oid: r.oid,
                name: r.name.to_string(),
                namespace: NS_PG_CATALOG,
                kind: r.kind,
                columns: r
                    .columns()
                    .iter()
                    .map(|c| RelColumn {
                        name: c.name.to_string(),
                        ty: c.ty,
                        type_oid: c.pg_oid,
                        not_null: false,
                        default: None,
                    })
                    .collect(),
                has_index: false,
                tuples: -1.0,
            });
        }
        for (i, (name, _)) in INFORMATION_SCHEMA_VIEWS.iter().enumerate() {
            out.push(RelInfo {
                oid: 13100 + i as i64,
                name: name.to_string(),
                namespace: NS_INFORMATION_SCHEMA,
                kind: "v",
                columns: Vec::new(),
                has_index: false,
                tuples: -1.0,
            });
        }
        for (i, (name, cols)) in self.system_views.iter().enumerate() {
            out.push(RelInfo {
                oid: 13200 + i as i64,
                name: name.to_string(),
                namespace: NS_REEF_CATALOG,
                kind: "v",
                columns: cols
                    .iter()
                    .map(|(n, t)| RelColumn {
                        name: n.clone(),
                        ty: *t,
                        type_oid: t.oid() as i64,
                        not_null: false,
                        default: None,
                    })
                    .collect(),
                has_index: false,
                tuples: -1.0,
            });
        }
        out
    }
}

/// A table's columns as clients see them (the hidden row id left out), numbered from 1.
fn visible_columns(t: &TableDesc) -> impl Iterator<Item = &crate::catalog::ColumnDesc> {
    t.columns.iter().filter(|c| !c.hidden)
}

/// The attribute number of a column id in a table (its place among the visible columns).
fn attnum(t: &TableDesc, id: u32) -> i16 {
    visible_columns(t)
        .position(|c| c.id == id)
        .map(|p| p as i16 + 1)
        .unwrap_or(0)
}

/// A table's indexes as PostgreSQL has them: the primary key's (index id 0, when declared),
/// then every public secondary index, as (index id, name, column ids).
fn indexes(t: &TableDesc) -> Vec<(u32, String, Vec<u32>)> {
    let mut out = Vec::new();
    if !t.has_hidden_key() {
        out.push((
            0,
            t.pk_name
                .clone()
                .unwrap_or_else(|| format!("{}_pkey", t.name)),
            t.primary_key.clone(),
        ));
    }
    for i in &t.indexes {
        if i.state == crate::catalog::IndexState::Public {
            out.push((i.id, i.name.clone(), i.columns.clone()));
        }
    }
    out
}

fn index_desc(t: &TableDesc, id: u32) -> Option<&IndexDesc> {
    t.indexes.iter().find(|i| i.id == id)
}

fn namespace_name(oid: i64) -> &'static str {
    match oid {
        NS_PG_CATALOG => SCHEMA,
        NS_INFORMATION_SCHEMA => INFORMATION_SCHEMA,
        NS_REEF_CATALOG => crate::system::SCHEMA,
        _ => "public",
    }
}

/// What the catalog functions look up, computed once per statement: relation names by OID and
/// OIDs by name (`regclass`), index and constraint definitions, view definitions, and the
/// sequences owned by columns.
pub struct Lookups {
    /// `oid::regclass`: OID to name (qualified outside `public` and `pg_catalog`).
    pub class_names: Vec<(i64, String)>,
    /// `'name'::regclass`: name (plain and schema-qualified) to OID.
    pub class_oids: Vec<(String, i64)>,
    /// `pg_get_indexdef(oid)`: the table's name qualified.
    pub index_defs: Vec<(i64, String)>,
    /// `pg_get_indexdef(oid, 0, true)`: pretty, the table's name as the search path finds it.
    pub index_defs_pretty: Vec<(i64, String)>,
    /// `pg_get_indexdef(oid, n, ..)`: the index's nth column, keyed `oid * 4096 + n`.
    pub index_columns: Vec<(i64, String)>,
    /// `pg_get_constraintdef(oid)`.
    pub constraint_defs: Vec<(i64, String)>,
    /// `pg_get_viewdef(oid)`.
    pub view_defs: Vec<(i64, String)>,
    /// `pg_get_serial_sequence(table, column)`, keyed `table.column`.
    pub serial_sequences: Vec<(String, String)>,
}

fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

impl Lookups {
    /// The lookups over a snapshot.
    pub fn new(snap: &Snapshot) -> Lookups {
        let mut l = Lookups {
            class_names: Vec::new(),
            class_oids: Vec::new(),
            index_defs: Vec::new(),
            index_defs_pretty: Vec::new(),
            index_columns: Vec::new(),
            constraint_defs: Vec::new(),
            view_defs: Vec::new(),
            serial_sequences: Vec::new(),
        };
        for r in snap.relations() {
            let ns = namespace_name(r.namespace);
            let shown = if r.namespace == NS_PUBLIC || r.namespace == NS_PG_CATALOG {
                quote_ident(&r.name)
            } else {
                format!("{ns}.{}", quote_ident(&r.name))
            };
            l.class_names.push((r.oid, shown));
            l.class_oids.push((format!("{ns}.{}", r.name), r.oid));
            if r.namespace == NS_PUBLIC || r.namespace == NS_PG_CATALOG {
                l.class_oids.push((r.name.clone(), r.oid));
            }
        }
        for o in &snap.objects {
            match &**o {
                Object::Table(t) => {
                    let col_name = |id: &u32| {
                        t.column_pos(*id)
                            .map(|p| quote_ident(&t.columns[p].name))
                            .unwrap_or_default()
                    };
                    for (index, name, cols) in indexes(t) {
                        let oid = index_oid(t.id, index);
                        let unique = index == 0 || index_desc(t, index).is_some_and(|i| i.unique);
                        let names: Vec<String> = cols.iter().map(col_name).collect();
                        for (defs, schema) in [
                            (&mut l.index_defs, "public."),
                            (&mut l.index_defs_pretty, ""),
                        ] {
                            defs.push((
                                oid,
                                format!(
                                    "CREATE {}INDEX {} ON {schema}{} USING btree ({})",
                                    if unique { "UNIQUE " } else { "" },
                                    quote_ident(&name),
                                    quote_ident(&t.name),
                                    names.join(", ")
                                ),
                            ));
                        }
                        for (i, n) in names.iter().enumerate() {
                            l.index_columns.push((oid * 4096 + i as i64 + 1, n.clone()));
                        }
                        let constraint = if index == 0 {
                            Some("PRIMARY KEY")
                        } else if index_desc(t, index).is_some_and(|i| i.constraint) {
                            Some("UNIQUE")
                        } else {
                            None
                        };
                        if let Some(kind) = constraint {
                            l.constraint_defs.push((
                                constraint_oid(t.id, index),
                                format!("{kind} ({})", names.join(", ")),
                            ));
                        }
                    }
                }
                Object::View(v) => {
                    l.view_defs
                        .push((object_oid(v.id), format!(" {};", v.query)));
                }
                Object::Sequence(s) => {
                    if let Some((table, col)) = s.owned_by {
                        let owner = snap.tables().find(|t| t.id == table);
                        if let Some(t) = owner {
                            if let Some(p) = t.column_pos(col) {
                                l.serial_sequences.push((
                                    format!("{}.{}", t.name, t.columns[p].name),
                                    format!("public.{}", s.name),
                                ));
                            }
                        }
                    }
                }
            }
        }
        l
    }
}

/// The rows of relation `rel` over `snap`. Values are literals, except `pg_settings.setting`,
/// which reads the session's setting when the statement runs.
pub fn rows(rel: &Relation, snap: &Snapshot) -> Vec<Vec<Expr>> {
    let row = || RowBuilder::new(rel);
    let mut out = Vec::new();
    match rel.name {
        "pg_namespace" => {
            for (oid, name) in [
                (NS_PG_CATALOG, SCHEMA),
                (NS_PUBLIC, "public"),
                (NS_INFORMATION_SCHEMA, INFORMATION_SCHEMA),
                (NS_REEF_CATALOG, crate::system::SCHEMA),
            ] {
                let owner = if oid == NS_PUBLIC {
                    ROLE_DATABASE_OWNER
                } else {
                    ROLE_REEF
                };
                out.push(
                    row()
                        .set("oid", oid)
                        .set("nspname", name)
                        .set("nspowner", owner)
                        .done(),
                );
            }
        }
        "pg_class" => {
            for r in snap.relations() {
                let kind = r.kind;
                out.push(
                    row()
                        .set("oid", r.oid)
                        .set("relname", r.name)
                        .set("relnamespace", r.namespace)
                        .set("relowner", ROLE_REEF)
                        .set(
                            "relam",
                            match kind {
                                "r" | "S" => AM_HEAP,
                                "i" => AM_BTREE,
                                _ => 0,
                            },
                        )
                        .set("relfilenode", if kind == "v" { 0 } else { r.oid })
                        .set("reltuples", Value::Float32(r.tuples))
                        .set("relhasindex", r.has_index)
                        .set("relpersistence", "p")
                        .set("relkind", kind)
                        .set("relnatts", r.columns.len() as i16)
                        .set("relispopulated", true)
                        .set("relreplident", if kind == "r" { "d" } else { "n" })
                        .done(),
                );
            }
        }
        "pg_attribute" => {
            for r in snap.relations() {
                for (i, c) in r.columns.iter().enumerate() {
                    let t = TYPES
                        .iter()
                        .find(|t| t.oid == c.type_oid || t.array == c.type_oid);
                    out.push(
                        row()
                            .set("attrelid", r.oid)
                            .set("attname", c.name.clone())
                            .set("atttypid", c.type_oid)
                            .set("attstattarget", -1)
                            .set("attlen", t.map(|t| t.len).unwrap_or(-1))
                            .set("attnum", i as i16 + 1)
                            .set("attcacheoff", -1)
                            .set("atttypmod", c.ty.type_modifier())
                            .set("attbyval", c.ty.type_len() > 0 && c.ty.type_len() <= 8)
                            .set("attalign", "i")
                            .set("attstorage", if c.ty.type_len() > 0 { "p" } else { "x" })
                            .set("attnotnull", c.not_null)
                            .set("atthasdef", c.default.is_some())
                            .set("attislocal", true)
                            .set(
                                "attcollation",
                                if c.ty.is_string() {
                                    COLLATION_DEFAULT
                                } else {
                                    0
                                },
                            )
                            .done(),
                    );
                }
            }
        }
        "pg_attrdef" => {
            for t in snap.tables() {
                for c in visible_columns(t) {
                    if let Some(d) = &c.default {
                        let n = attnum(t, c.id);
                        out.push(
                            row()
                                .set("oid", attrdef_oid(t.id, n as usize))
                                .set("adrelid", object_oid(t.id))
                                .set("adnum", n)
                                .set("adbin", d.clone())
                                .done(),
                        );
                    }
                }
            }
        }
        "pg_type" => {
            for t in TYPES {
                let base = row()
                    .set("typnamespace", NS_PG_CATALOG)
                    .set("typowner", ROLE_REEF)
                    .set("typisdefined", true)
                    .set("typdelim", ",")
                    .set("typalign", "i")
                    .set("typstorage", "p")
                    .set("typtypmod", -1);
                out.push(
                    base.set("oid", t.oid)
                        .set("typname", t.name)
                        .set("typlen", t.len)
                        .set("typbyval", t.len > 0 && t.len <= 8)
                        .set("typtype", if t.category == "P" { "p" } else { "b" })
                        .set("typcategory", t.category)
                        .set("typelem", t.elem)
                        .set("typarray", t.array)
                        .set("typinput", if t.elem != 0 { ARRAY_IN } else { 0 })
                        .set(
                            "typcollation",
                            if t.collatable { COLLATION_DEFAULT } else { 0 },
                        )
                        .done(),
                );
                if t.array != 0 {
                    out.push(
                        row()
                            .set("typnamespace", NS_PG_CATALOG)
                            .set("typowner", ROLE_REEF)
                            .set("typisdefined", true)
                            .set("typdelim", ",")
                            .set("typalign", "i")
                            .set("typstorage", "x")
                            .set("typtypmod", -1)
                            .set("oid", t.array)
                            .set("typname", format!("_{}", t.name))
                            .set("typlen", -1i16)
                            .set("typtype", "b")
                            .set("typcategory", "A")
                            .set("typelem", t.oid)
                            .set("typinput", ARRAY_IN)
                            .set(
                                "typcollation",
                                if t.collatable { COLLATION_DEFAULT } else { 0 },
                            )
                            .done(),
                    );
                }
            }
        }
        "pg_index" => {
            for t in snap.tables() {
                for (index, _, cols) in indexes(t) {
                    let primary = index == 0;
                    let unique = primary || index_desc(t, index).is_some_and(|i| i.unique);
                    let class: Vec<Value> = cols
                        .iter()
                        .filter_map(|id| t.column_pos(*id))
                        .map(|p| Value::Int64(OPCLASS_OID_BASE + t.columns[p].ty.oid() as i64))
                        .collect();
                    let collation: Vec<Value> = cols
                        .iter()
                        .filter_map(|id| t.column_pos(*id))
                        .map(|p| {
                            Value::Int64(if t.columns[p].ty.is_string() {
                                COLLATION_DEFAULT
                            } else {
                                0
                            })
                        })
                        .collect();
                    out.push(
                        row()
                            .set("indexrelid", index_oid(t.id, index))
                            .set("indrelid", object_oid(t.id))
                            .set("indnatts", cols.len() as i16)
                            .set("indnkeyatts", cols.len() as i16)
                            .set("indisunique", unique)
                            .set("indisprimary", primary)
                            .set("indimmediate", true)
                            .set("indisvalid", true)
                            .set("indisready", true)
                            .set("indislive", true)
                            .set("indkey", int2s(cols.iter().map(|c| attnum(t, *c))))
                            .set("indcollation", Value::Array(collation))
                            .set("indclass", Value::Array(class))
                            .set("indoption", int2s(cols.iter().map(|_| 0)))
                            .done(),
                    );
                }
            }
        }
        "pg_constraint" => {
            for t in snap.tables() {
                for (index, name, cols) in indexes(t) {
                    let kind = if index == 0 {
                        "p"
                    } else if index_desc(t, index).is_some_and(|i| i.constraint) {
                        "u"
                    } else {
                        continue;
                    };
                    out.push(
                        row()
                            .set("oid", constraint_oid(t.id, index))
                            .set("conname", name)
                            .set("connamespace", NS_PUBLIC)
                            .set("contype", kind)
                            .set("convalidated", true)
                            .set("conrelid", object_oid(t.id))
                            .set("conindid", index_oid(t.id, index))
                            .set("conislocal", true)
                            .set("connoinherit", true)
                            .set("conkey", int2s(cols.iter().map(|c| attnum(t, *c))))
                            .done(),
                    );
                }
            }
        }
        "pg_am" => {
            for (oid, name, kind) in [(AM_HEAP, "heap", "t"), (AM_BTREE, "btree", "i")] {
                out.push(
                    row()
                        .set("oid", oid)
                        .set("amname", name)
                        .set("amtype", kind)
                        .done(),
                );
            }
        }
        "pg_database" => {
            out.push(
                row()
                    .set("oid", DATABASE_OID)
                    .set("datname", "reef")
                    .set("datdba", ROLE_REEF)
                    .set("encoding", 6)
                    .set("datlocprovider", "c")
                    .set("datallowconn", true)
                    .set("datconnlimit", -1)
                    .set("dattablespace", 1663)
                    .set("datcollate", "C")
                    .set("datctype", "C")
                    .done(),
            );
        }
        "pg_settings" => {
            for (name, _) in crate::session::KNOWN_SETTINGS {
                out.push(
                    row()
                        .set("name", *name)
                        .set_expr(
                            "setting",
                            Expr::Session(
                                SessionFunc::CurrentSetting,
                                vec![Expr::Literal(Value::Text(name.to_string()))],
                            ),
                        )
                        .set("category", "Ungrouped")
                        .set("context", "user")
                        .set("vartype", "string")
                        .set("source", "default")
                        .done(),
                );
            }
        }
        "pg_roles" | "pg_authid" => {
            out.push(
                row()
                    .set("oid", ROLE_REEF)
                    .set("rolname", "reef")
                    .set("rolsuper", true)
                    .set("rolinherit", true)
                    .set("rolcreaterole", true)
                    .set("rolcreatedb", true)
                    .set("rolcanlogin", true)
                    .set("rolreplication", true)
                    .set("rolbypassrls", true)
                    .set("rolconnlimit", -1)
                    .set_expr("rolpassword", Expr::Literal(Value::Text("********".into())))
                    .done(),
            );
            out.push(
                row()
                    .set("oid", ROLE_DATABASE_OWNER)
                    .set("rolname", "pg_database_owner")
                    .set("rolinherit", true)
                    .set("rolconnlimit", -1)
                    .done(),
            );
        }
        "pg_user" => {
            out.push(
                row()
                    .set("usename", "reef")
                    .set("usesysid", ROLE_REEF)
                    .set("usecreatedb", true)
                    .set("usesuper", true)
                    .set("userepl", true)
                    .set("usebypassrls", true)
                    .set("passwd", "********")
                    .done(),
            );
        }
        "pg_proc" => {
            for (oid, name, ret) in [(ARRAY_IN, "array_in", 2277), (89, "version", 25)] {
                out.push(
                    row()
                        .set("oid", oid)
                        .set("proname", name)
                        .set("pronamespace", NS_PG_CATALOG)
                        .set("proowner", ROLE_REEF)
                        .set("prolang", 12)
                        .set("prokind", "f")
                        .set("proisstrict", true)
                        .set("provolatile", "s")
                        .set("proparallel", "s")
                        .set("prorettype", ret as i64)
                        .done(),
                );
            }
        }
        "pg_collation" => {
            for (oid, name, provider) in
                [(100, "default", "d"), (950, "C", "c"), (951, "POSIX", "c")]
            {
                out.push(
                    row()
                        .set("oid", oid as i64)
                        .set("collname", name)
                        .set("collnamespace", NS_PG_CATALOG)
                        .set("collowner", ROLE_REEF)
                        .set("collprovider", provider)
                        .set("collisdeterministic", true)
                        .set("collencoding", -1)
                        .done(),
                );
            }
        }
        "pg_tablespace" => {
            for (oid, name) in [(1663, "pg_default"), (1664, "pg_global")] {
                out.push(
                    row()
                        .set("oid", oid as i64)
                        .set("spcname", name)
                        .set("spcowner", ROLE_REEF)
                        .done(),
                );
            }
        }
        "pg_opclass" => {
            for t in TYPES
                .iter()
                .filter(|t| t.category != "P" && t.category != "X")
            {
                out.push(
                    row()
                        .set("oid", OPCLASS_OID_BASE + t.oid)
                        .set("opcmethod", AM_BTREE)
                        .set("opcname", format!("{}_ops", t.name))
                        .set("opcnamespace", NS_PG_CATALOG)
                        .set("opcowner", ROLE_REEF)
                        .set("opcintype", t.oid)
                        .set("opcdefault", true)
                        .done(),
                );
            }
        }
        "pg_sequence" => {
            for o in &snap.objects {
                if let Object::Sequence(s) = &**o {
                    out.push(
                        row()
                            .set("seqrelid", object_oid(s.id))
                            .set("seqtypid", 20i64)
                            .set("seqstart", s.start)
                            .set("seqincrement", s.increment)
                            .set("seqmax", s.max_value)
                            .set("seqmin", s.min_value)
                            .set("seqcache", 1i64)
                            .set("seqcycle", s.cycle)
                            .done(),
                    );
                }
            }
        }
        "pg_tables" => {
            for t in snap.tables() {
                out.push(
                    row()
                        .set("schemaname", "public")
                        .set("tablename", t.name.clone())
                        .set("tableowner", "reef")
                        .set("hasindexes", !indexes(t).is_empty())
                        .done(),
                );
            }
        }
        "pg_views" => {
            for o in &snap.objects {
                if let Object::View(v) = &**o {
                    out.push(
                        row()
                            .set("schemaname", "public")
                            .set("viewname", v.name.clone())
                            .set("viewowner", "reef")
                            .set("definition", format!(" {};", v.query))
                            .done(),
                    );
                }
            }
        }
        "pg_indexes" => {
            let lookups = Lookups::new(snap);
            for t in snap.tables() {
                for (index, name, _) in indexes(t) {
                    let oid = index_oid(t.id, index);
                    let def = lookups
                        .index_defs
                        .iter()
                        .find(|(o, _)| *o == oid)
                        .map(|(_, d)| d.clone())
                        .unwrap_or_default();
                    out.push(
                        row()
                            .set("schemaname", "public")
                            .set("tablename", t.name.clone())
                            .set("indexname", name)
                            .set("indexdef", def)
                            .done(),
                    );
                }
            }
        }
        "pg_sequences" => {
            for o in &snap.objects {
                if let Object::Sequence(s) = &**o {
                    out.push(
                        row()
                            .set("schemaname", "public")
                            .set("sequencename", s.name.clone())
                            .set("sequenceowner", "reef")
                            .set("data_type", "bigint")
                            .set("start_value", s.start)
                            .set("min_value", s.min_value)
                            .set("max_value", s.max_value)
                            .set("increment_by", s.increment)
                            .set("cycle", s.cycle)
                            .set("cache_size", 1i64)
                            .done(),
                    );
                }
            }
        }
        // Everything else is empty: reefdb has no such objects.
        _ => {}
    }
    out
}
