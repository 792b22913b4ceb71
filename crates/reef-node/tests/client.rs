//! The routing client against real `reef store` processes: a client whose partition map went
//! stale (the partitions split and their leaders moved after it cached them) still reads and
//! writes correctly, and a transaction spanning several partitions commits in all of them.

use std::path::Path;
use std::time::Duration;

use reef_client::Client;
use reef_rpc::pb;
use reef_testkit::store_cluster::{StoreCluster, CLUSTER_ID};

fn key(i: u64) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// Every key with the value `{prefix}{i}`, in key order.
fn expected(prefix: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..100)
        .map(|i| (key(i), format!("{prefix}{i}").into_bytes()))
        .collect()
}

fn put(key: &[u8], value: &str) -> pb::Mutation {
    pb::Mutation {
        op: pb::mutation::Op::Put as i32,
        key: key.to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        conflict_ts: 0,
    }
}

/// Writes `key(i) = value(i)` for every `i` in one transaction (primary: the first key).
async fn write_all(client: &Client, ids: &[u64], value: impl Fn(u64) -> String, start_ts: u64) {
    let mutations: Vec<pb::Mutation> = ids.iter().map(|&i| put(&key(i), &value(i))).collect();
    let keys: Vec<Vec<u8>> = ids.iter().map(|&i| key(i)).collect();
    client
        .prewrite(mutations, &keys[0], start_ts, 60_000)
        .await
        .unwrap();
    client.commit(keys, start_ts, start_ts + 1).await.unwrap();
}

#[test]
fn stale_partition_map_still_routes_correctly() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = StoreCluster::start_with(
        Path::new(env!("CARGO_BIN_EXE_reef")),
        3,
        3,
        50,
        &["--raft-threads", "2"],
    )
    .unwrap();
    let nodes: Vec<(u64, String)> = cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    let client = Client::new(CLUSTER_ID, &nodes, Duration::from_secs(30));
    runtime.block_on(async {
        cluster.leader(Duration::from_secs(20)).await.unwrap();
        let ids: Vec<u64> = (0..100).collect();
        write_all(&client, &ids, |i| format!("v{i}"), 100).await;
        let cached = client.cached_route(&key(50)).unwrap();
        assert_eq!(cached.partition.id, 1, "one partition so far");

        // Behind the client's back: three splits, and leaders moved off their first node.
        for at in [20, 40, 60] {
            cluster.split(&key(at)).await.unwrap();
        }
        for (k, node) in [(10, 1), (50, 2), (70, 0)] {
            cluster.move_leader(&key(k), node).await.unwrap();
        }
        assert_eq!(client.cached_route(&key(50)).unwrap().partition.id, 1);

        // The stale client reads the right values and scans across all partitions in order.
        assert_eq!(
            client.get(&key(45), 1000).await.unwrap(),
            Some(b"v45".to_vec())
        );
        assert_eq!(client.get(&key(999), 1000).await.unwrap(), None);
        let all = client.scan(b"", b"", 1000, 1000).await.unwrap();
        let old = expected("v");
        assert_eq!(all, old);
        // A bounded scan that starts and ends inside partitions, with a limit.
        let some = client.scan(&key(15), &key(65), 1000, 30).await.unwrap();
        assert_eq!(some, old[15..45].to_vec());

        // One transaction over every partition commits everywhere.
        write_all(&client, &ids, |i| format!("w{i}"), 2000).await;
        let all = client.scan(b"", b"", 3000, 1000).await.unwrap();
        assert_eq!(all, expected("w"));
        // The old snapshot still sees the old values.
        assert_eq!(
            client.get(&key(70), 1000).await.unwrap(),
            Some(b"v70".to_vec())
        );
        // The client has learned the four partitions.
        let routes: Vec<u64> = [0, 20, 40, 60]
            .iter()
            .map(|&i| client.cached_route(&key(i)).unwrap().partition.id)
            .collect();
        let mut distinct = routes.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{routes:?}");

        filters_run_where_the_rows_are(&client, &mut cluster).await;
    });
    cluster.stop_all().unwrap();
}

/// A scan program (the SQL layer's pushed-down filter and projection) runs on the nodes:
/// over partitions it spans, only the matching rows come back, reduced to the needed columns.
async fn filters_run_where_the_rows_are(client: &Client, cluster: &mut StoreCluster) {
    use reef_sql::catalog::{index_prefix, ColumnDesc, TableDesc};
    use reef_sql::exec::{decode_table_row, prefix_end, row_key, row_value};
    use reef_sql::expr::Expr;
    use reef_sql::types::ops::BinaryOp;
    use reef_sql::{DataType, Value};

    let col = |id: u32, ty: DataType| ColumnDesc {
        id,
        name: format!("c{id}"),
        ty,
        nullable: true,
        default: None,
        hidden: false,
    };
    let table = TableDesc {
        id: 7,
        name: "t".into(),
        columns: vec![
            col(1, DataType::Int32),
            col(2, DataType::Int32),
            col(3, DataType::Text),
        ],
        primary_key: vec![1],
        pk_name: None,
        indexes: vec![],
        next_column_id: 4,
        next_index_id: 1,
        version: 1,
        write_version: 1,
        fence: None,
        building: None,
        row_estimate: None,
    };
    let row = |i: i32| {
        vec![
            Value::Int32(i),
            Value::Int32(i * 7),
            Value::Text("x".repeat(50)),
        ]
    };
    let mutations: Vec<pb::Mutation> = (1..=100)
        .map(|i| pb::Mutation {
            op: pb::mutation::Op::Put as i32,
            key: row_key(&table, &row(i)).into(),
            value: row_value(&table, &row(i)).into(),
            conflict_ts: 0,
        })
        .collect();
    let primary = mutations[0].key.to_vec();
    let keys: Vec<Vec<u8>> = mutations.iter().map(|m| m.key.to_vec()).collect();
    client
        .prewrite(mutations, &primary, 5000, 60_000)
        .await
        .unwrap();
    client.commit(keys, 5000, 5001).await.unwrap();
    for at in [30, 60] {
        cluster.split(&row_key(&table, &row(at))).await.unwrap();
    }

    // c2 % 10 = 3, needing c1 and c2 only.
    let filter = Expr::Binary(
        BinaryOp::Eq,
        Box::new(Expr::Binary(
            BinaryOp::Mod,
            Box::new(Expr::Column(1)),
            Box::new(Expr::Literal(Value::Int32(10))),
        )),
        Box::new(Expr::Literal(Value::Int32(3))),
    );
    let needed = [true, true, false];
    let program = reef_sql::pushdown::program(&table, &needed, Some(&filter), &[]).unwrap();
    let prefix = index_prefix(table.id, 0);
    let end = prefix_end(&prefix);
    let (mut from, mut got, mut batches) = (prefix.clone(), Vec::new(), 0);
    loop {
        // A small read limit: several batches, each partition in more than one.
        let (pairs, resume) = client
            .scan_filtered(&from, &end, 6000, 16, &program)
            .await
            .unwrap();
        batches += 1;
        got.extend(pairs);
        match resume {
            Some(next) => from = next,
            None => break,
        }
    }
    assert!(batches > 3, "{batches} batches");
    let rows: Vec<Vec<Value>> = got
        .iter()
        .map(|(k, v)| decode_table_row(&table, k, v, &[true; 3]).unwrap())
        .collect();
    let want: Vec<i32> = (1..=100).filter(|i| (i * 7) % 10 == 3).collect();
    let ids: Vec<i32> = rows
        .iter()
        .map(|r| match r[0] {
            Value::Int32(i) => i,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, want, "only the matching rows travelled, in key order");
    for r in &rows {
        assert!(
            r[2].is_null(),
            "the unneeded column stayed on the node: {r:?}"
        );
    }
}
