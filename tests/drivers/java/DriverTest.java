// Driver test: pgJDBC used the way an application uses it, against reef or PostgreSQL.
//
//   REEF_URL=postgresql://reef@127.0.0.1:5433/reef \
//     java -cp /usr/share/java/postgresql.jar tests/drivers/java/DriverTest.java
//
// Every check runs even when an earlier one fails; each prints "ok" or "FAIL" with the reason,
// and the program ends with "N passed, N failed" and exits 1 if any check failed.
//
// Every check passes against PostgreSQL 15 and against reef. Where reef has a documented limit
// (tests/drivers/README.md, "Known limits"), the check finds out which server it talks to and, on
// reef, asserts the clear error reef gives instead of PostgreSQL's behaviour.
//
// pgJDBC sends the JVM's default time zone as the session's TimeZone, and reef refuses any zone
// but UTC; so the test runs its JVM in UTC, as an application using reef must.
// REEF_TLS=0 leaves out the TLS check, for a server without TLS.

import java.math.BigDecimal;
import java.net.URI;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.TimeZone;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiPredicate;
import org.postgresql.PGConnection;
import org.postgresql.PGResultSetMetaData;
import org.postgresql.util.PGInterval;

public class DriverTest {
    // Tables of this test start with this prefix, so the three driver tests never collide.
    static final String PREFIX = "drv_java_";
    static final String ITEMS = PREFIX + "items";
    // The role of the SCRAM check (the same in the three tests, which run one after another).
    static final String SCRAM_USER = "drv_scram";

    // Whether the server is reef (its version() says "reefdb"), set by the first check.
    static boolean isReef = false;

    static String jdbcUrl;
    static String user;
    static Connection text;   // binaryTransfer=false: every parameter and result in text
    static Connection binary; // prepareThreshold=1: server-prepared from the first execution, then binary
    static int passed = 0;
    static final List<String> failed = new ArrayList<>();

    interface Body {
        void run() throws Exception;
    }

    static class CheckFailed extends Exception {
        CheckFailed(String message) {
            super(message);
        }
    }

    static void expect(boolean condition, String message) throws CheckFailed {
        if (!condition) throw new CheckFailed(message);
    }

    // Runs one named check; an exception fails it, and broken connections are replaced.
    static void check(String name, Body body) {
        try {
            body.run();
            passed++;
            System.out.println("ok   " + name);
        } catch (Exception e) {
            failed.add(name);
            String detail = e instanceof SQLException s && !(e instanceof BatchUpdateException)
                    ? "SQLSTATE " + s.getSQLState() + ": " + s.getMessage()
                    : e instanceof CheckFailed ? e.getMessage() : e.toString();
            System.out.println("FAIL " + name + ": " + detail.replaceAll("\\s*\\n\\s*", " "));
            heal();
        }
    }

    static void heal() {
        try {
            if (text == null || !text.isValid(5)) text = connect("binaryTransfer=false");
            if (binary == null || !binary.isValid(5)) binary = connect("prepareThreshold=1");
            for (Connection c : List.of(text, binary)) {
                if (!c.getAutoCommit()) {
                    c.rollback();
                    c.setAutoCommit(true);
                }
            }
        } catch (SQLException e) {
            System.out.println("cannot reconnect: " + e.getMessage());
        }
    }

    static Connection connect(String options) throws SQLException {
        return DriverManager.getConnection(jdbcUrl + (jdbcUrl.contains("?") ? "&" : "?") + options);
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    static void recreate(String table, String columns) throws SQLException {
        exec(text, "DROP TABLE IF EXISTS " + table);
        exec(text, "CREATE TABLE " + table + " (" + columns + ")");
    }

    static long count(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    // Runs a statement that must fail with the given SQLSTATE, then checks the connection.
    static void expectSqlstate(String sqlstate, String sql) throws Exception {
        try {
            exec(text, sql);
            throw new CheckFailed(sql + " succeeded; expected SQLSTATE " + sqlstate);
        } catch (SQLException e) {
            expect(sqlstate.equals(e.getSQLState()), sql + ": SQLSTATE " + e.getSQLState() + " (" + e.getMessage() + "), want " + sqlstate);
        }
        expect(count(text, "SELECT 1") == 1, "the connection does not answer after the error");
    }

    // --- Round trips -------------------------------------------------------------------------

    interface Setter {
        void set(PreparedStatement ps, int index, Object value) throws SQLException;
    }

    interface Getter {
        Object get(ResultSet rs, int index) throws SQLException;
    }

    // One type: its values as {sent, expected back}, how to bind and read them, how to compare,
    // and whether pgJDBC reads it in binary once a statement is server-prepared.
    record Case(String label, String sqlType, List<Object[]> values, Setter set, Getter get,
                BiPredicate<Object, Object> same, boolean binaryResult, boolean needsPgType) {
        Case(String label, String sqlType, List<Object[]> values, Setter set, Getter get,
             BiPredicate<Object, Object> same, boolean binaryResult) {
            this(label, sqlType, values, set, get, same, binaryResult, false);
        }
    }

    // reef has no pg_catalog yet (it is being built): pgJDBC's lookups of a type it does not know
    // by itself (interval, through PGInterval) and DatabaseMetaData fail on reef with 42P01.
    static boolean noPgCatalogYet(SQLException e) {
        return isReef && "42P01".equals(e.getSQLState()) && e.getMessage() != null && e.getMessage().contains("\"pg_");
    }

    static List<Object[]> same(Object... values) {
        List<Object[]> list = new ArrayList<>();
        for (Object v : values) list.add(new Object[] {v, v});
        return list;
    }

    static List<Object[]> pairs(Object... sentThenExpected) {
        List<Object[]> list = new ArrayList<>();
        for (int i = 0; i < sentThenExpected.length; i += 2) list.add(new Object[] {sentThenExpected[i], sentThenExpected[i + 1]});
        return list;
    }

    static final BiPredicate<Object, Object> EQUALS = Objects::equals;
    // Float.equals and Double.equals tell -0.0 from 0.0 and find NaN equal to NaN.
    // BigDecimal.equals compares the scale too, so 1.00 is not 1.0.
    // Binary numerics read as strings come back in BigDecimal's form (1E-40), text ones as sent.
    static final BiPredicate<Object, Object> SAME_NUMBER = (a, b) -> a.equals(b)
            || (!"NaN".equals(a) && !"NaN".equals(b) && new BigDecimal((String) a).equals(new BigDecimal((String) b)));
    static final BiPredicate<Object, Object> BYTES = (a, b) -> Arrays.equals((byte[]) a, (byte[]) b);
    static final BiPredicate<Object, Object> INSTANT = (a, b) -> ((OffsetDateTime) a).isEqual((OffsetDateTime) b);

    static byte[] bytes(int n, int mul) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) ((i * mul) % 256);
        return b;
    }

    static List<Case> cases() throws SQLException {
        Setter obj = (ps, i, v) -> ps.setObject(i, v);
        return List.of(
            // pgJDBC 42.5 reads boolean in text only.
            new Case("boolean", "boolean", same(true, false), obj, (rs, i) -> rs.getObject(i, Boolean.class), EQUALS, false),
            new Case("smallint", "smallint", same((short) -32768, (short) 0, (short) 32767),
                (ps, i, v) -> ps.setShort(i, (Short) v), (rs, i) -> rs.getShort(i), EQUALS, true),
            new Case("integer", "integer", same(Integer.MIN_VALUE, 0, Integer.MAX_VALUE),
                (ps, i, v) -> ps.setInt(i, (Integer) v), (rs, i) -> rs.getInt(i), EQUALS, true),
            new Case("bigint", "bigint", same(Long.MIN_VALUE, 0L, Long.MAX_VALUE),
                (ps, i, v) -> ps.setLong(i, (Long) v), (rs, i) -> rs.getLong(i), EQUALS, true),
            new Case("real", "real", same(1.5f, -0.0f, 0.1f, Float.MAX_VALUE, Float.MIN_VALUE, Float.MIN_NORMAL,
                    Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN),
                (ps, i, v) -> ps.setFloat(i, (Float) v), (rs, i) -> rs.getFloat(i), EQUALS, true),
            new Case("double precision", "double precision", same(0.1, -0.0, Double.MAX_VALUE, Double.MIN_VALUE,
                    Double.MIN_NORMAL, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN),
                (ps, i, v) -> ps.setDouble(i, (Double) v), (rs, i) -> rs.getDouble(i), EQUALS, true),
            new Case("numeric", "numeric", same(new BigDecimal("0"), new BigDecimal("1.00"), new BigDecimal("-1.5"),
                    new BigDecimal("0.000001"), new BigDecimal("1000000"), new BigDecimal("12345678901234567890.12345678"),
                    new BigDecimal("79228162514264337593543950335"), new BigDecimal("-0.0000000000000000000000000001")),
                (ps, i, v) -> ps.setBigDecimal(i, (BigDecimal) v), (rs, i) -> rs.getBigDecimal(i), EQUALS, true),
            new Case("numeric(10,2)", "numeric(10,2)", pairs(new BigDecimal("1.5"), new BigDecimal("1.50"),
                    new BigDecimal("-12345678.905"), new BigDecimal("-12345678.91"), new BigDecimal("99999999.99"), new BigDecimal("99999999.99")),
                (ps, i, v) -> ps.setBigDecimal(i, (BigDecimal) v), (rs, i) -> rs.getBigDecimal(i), EQUALS, true),
            new Case("text", "text", same("", "plain ascii", "héllo wörld — ünïcödé 日本語 🦀 😀",
                    "quotes ' \" back\\slash\nnewline\ttab", "x".repeat(100_000)),
                (ps, i, v) -> ps.setString(i, (String) v), (rs, i) -> rs.getString(i), EQUALS, false),
            new Case("varchar(10)", "varchar(10)", same("ünïcödé日本🦀", ""),
                (ps, i, v) -> ps.setString(i, (String) v), (rs, i) -> rs.getString(i), EQUALS, false),
            new Case("char(5)", "char(5)", pairs("ab", "ab   ", "ü日🦀xy", "ü日🦀xy"),
                (ps, i, v) -> ps.setString(i, (String) v), (rs, i) -> rs.getString(i), EQUALS, false),
            new Case("bytea", "bytea", same(new byte[0], new byte[] {0}, bytes(256, 1), bytes(200_000, 7919)),
                (ps, i, v) -> ps.setBytes(i, (byte[]) v), (rs, i) -> rs.getBytes(i), BYTES, true),
            new Case("date", "date", same(LocalDate.of(2024, 2, 29), LocalDate.of(1, 1, 1), LocalDate.of(9999, 12, 31),
                    LocalDate.of(1970, 1, 1), LocalDate.of(1999, 12, 31), LocalDate.of(2000, 1, 1)),
                obj, (rs, i) -> rs.getObject(i, LocalDate.class), EQUALS, true),
            new Case("timestamp", "timestamp", same(LocalDateTime.of(2024, 2, 29, 12, 34, 56, 123456000),
                    LocalDateTime.of(1, 1, 1, 0, 0), LocalDateTime.of(9999, 12, 31, 23, 59, 59, 999999000),
                    LocalDateTime.of(1969, 12, 31, 23, 59, 59, 999999000), LocalDateTime.of(2000, 1, 1, 0, 0)),
                obj, (rs, i) -> rs.getObject(i, LocalDateTime.class), EQUALS, true),
            // Values within the column's precision. (PostgreSQL rounds finer ones to it, reef keeps
            // them: a known limit.)
            new Case("timestamp(3)", "timestamp(3)", same(LocalDateTime.of(2024, 2, 29, 12, 34, 56, 123000000),
                    LocalDateTime.of(1999, 12, 31, 23, 59, 59, 999000000), LocalDateTime.of(2000, 1, 1, 0, 0)),
                obj, (rs, i) -> rs.getObject(i, LocalDateTime.class), EQUALS, true),
            // Compared as instants: the server answers in its session time zone.
            new Case("timestamptz", "timestamptz", same(
                    OffsetDateTime.of(2024, 2, 29, 12, 34, 56, 123456000, ZoneOffset.ofHoursMinutes(5, 30)),
                    OffsetDateTime.of(1, 1, 1, 0, 0, 0, 0, ZoneOffset.UTC),
                    OffsetDateTime.of(9999, 12, 31, 23, 59, 59, 999999000, ZoneOffset.UTC),
                    OffsetDateTime.of(1969, 12, 31, 23, 59, 59, 999999000, ZoneOffset.UTC)),
                obj, (rs, i) -> rs.getObject(i, OffsetDateTime.class), INSTANT, true),
            // pgJDBC reads interval in text only, and looks its type up in pg_type.
            new Case("interval (PGInterval; reef without pg_catalog: 42P01, a known limit)", "interval",
                same(new PGInterval("1 year 2 mons 3 days 04:05:06.789"), new PGInterval("00:00:00"),
                    new PGInterval("-1 days"), new PGInterval("-3 days +00:00:01"), new PGInterval("0.000001 seconds"),
                    new PGInterval("100000 days 23:59:59.999999"), new PGInterval("-1 year -2 mons")),
                obj, (rs, i) -> rs.getObject(i, PGInterval.class), EQUALS, false, true),
            // The same intervals as plain strings, which needs no type lookup in the driver.
            new Case("interval (as strings)", "interval", pairs("1 year 2 mons 3 days 04:05:06.789", "1 year 2 mons 3 days 04:05:06.789",
                    "00:00:00", "00:00:00", "-1 days", "-1 days", "-3 days +00:00:01", "-3 days +00:00:01",
                    "0.000001 seconds", "00:00:00.000001", "100000 days 23:59:59.999999", "100000 days 23:59:59.999999",
                    "-1 year -2 mons", "-1 years -2 mons"),
                (ps, i, v) -> ps.setObject(i, v, Types.OTHER), (rs, i) -> rs.getString(i), EQUALS, false));
    }

    static String show(Object v) {
        String s = v instanceof byte[] b ? "<" + b.length + " bytes>" : v instanceof PGInterval p ? p.getValue() : String.valueOf(v);
        return s.length() > 60 ? s.substring(0, 60) + "... (" + s.length() + " characters)" : s;
    }

    // Inserts each value with a parameter and reads it back: on the text connection in text; on
    // the binary one, the SELECT runs twice and the second execution must come back in binary.
    static void roundTrip(Object n, Case c, boolean useBinary) throws Exception {
        String table = PREFIX + "t_" + n;
        if (!useBinary) recreate(table, "id integer PRIMARY KEY, v " + c.sqlType());
        Connection conn = useBinary ? binary : text;
        int base = useBinary ? 1000 : 0;
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < c.values().size(); i++) {
            Object sent = c.values().get(i)[0], want = c.values().get(i)[1];
            try (PreparedStatement ins = conn.prepareStatement("INSERT INTO " + table + " (id, v) VALUES (?, ?)");
                 PreparedStatement sel = conn.prepareStatement("SELECT v FROM " + table + " WHERE id = ?")) {
                ins.setInt(1, base + i);
                c.set().set(ins, 2, sent);
                ins.executeUpdate();
                for (int run = 0; run < (useBinary ? 2 : 1); run++) {
                    sel.setInt(1, base + i);
                    try (ResultSet rs = sel.executeQuery()) {
                        rs.next();
                        Object got = c.get().get(rs, 1);
                        int format = rs.getMetaData().unwrap(PGResultSetMetaData.class).getFormat(1);
                        // The first execution of a statement on the binary connection may still
                        // be text (pgJDBC asks for binary once it knows the result's types).
                        int wantFormat = useBinary && c.binaryResult() ? 1 : 0;
                        if ((!useBinary || run == 1) && format != wantFormat) {
                            problems.add(show(sent) + ": execution " + (run + 1) + " came back in format " + format + ", want " + wantFormat);
                        } else if (!c.same().test(got, want)) {
                            problems.add(show(sent) + ": got " + show(got) + ", want " + show(want));
                        }
                    }
                }
            } catch (SQLException e) {
                if (!(c.needsPgType() && noPgCatalogYet(e))) {
                    problems.add(show(sent) + ": SQLSTATE " + e.getSQLState() + ": " + e.getMessage().lines().findFirst().orElse(""));
                }
            }
        }
        expect(problems.isEmpty(), String.join("; ", problems));
    }

    // PostgreSQL keeps up to 131072 digits before the point and 16383 after, and NaN, which
    // BigDecimal cannot hold: these values are sent and read as strings. (Numeric +-Infinity is
    // left to the other drivers: pgJDBC 42.5 cannot read it in binary.) reef keeps 28-29
    // significant digits and scale 28 (the "numeric" case), and refuses the rest with 22003 (out
    // of range) or 0A000 (NaN). Each: the value, reef's SQLSTATE.
    static final String[][] NUMERIC_BEYOND = {
        {"123456789012345678901234567890123456789012345678901234567890.123456789012345678901234567890", "22003"},
        {"0.0000000000000000000000000000000000000001", "22003"},
        {"NaN", "0A000"},
    };

    // Values beyond reef's limits: they round-trip exactly on PostgreSQL; on reef each INSERT must
    // fail with its SQLSTATE and store nothing.
    static void numericBeyond(boolean useBinary) throws Exception {
        Setter asOther = (ps, i, v) -> ps.setObject(i, v, Types.OTHER);
        if (!isReef) {
            List<Object[]> values = new ArrayList<>();
            for (String[] v : NUMERIC_BEYOND) values.add(new Object[] {v[0], v[0]});
            roundTrip("numeric_beyond", new Case("numeric beyond", "numeric", values, asOther, (rs, i) -> rs.getString(i), SAME_NUMBER, true), useBinary);
            return;
        }
        String table = PREFIX + "t_numeric_beyond";
        if (!useBinary) recreate(table, "id integer PRIMARY KEY, v numeric");
        Connection conn = useBinary ? binary : text;
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < NUMERIC_BEYOND.length; i++) {
            String value = NUMERIC_BEYOND[i][0], sqlstate = NUMERIC_BEYOND[i][1];
            try (PreparedStatement ins = conn.prepareStatement("INSERT INTO " + table + " (id, v) VALUES (?, ?)")) {
                ins.setInt(1, i);
                asOther.set(ins, 2, value);
                ins.executeUpdate();
                problems.add(show(value) + " was accepted; reef's known limit says it is refused with " + sqlstate);
            } catch (SQLException e) {
                if (!sqlstate.equals(e.getSQLState())) problems.add(show(value) + ": SQLSTATE " + e.getSQLState() + " (" + e.getMessage() + "), want " + sqlstate);
            }
        }
        expect(problems.isEmpty(), String.join("; ", problems));
        expect(count(text, "SELECT count(*) FROM " + table) == 0, "a refused value was stored");
    }

    public static void main(String[] args) throws Exception {
        String url = System.getenv("REEF_URL");
        if (url == null || url.isEmpty()) {
            System.err.println("DriverTest: set REEF_URL, e.g. postgresql://reef@127.0.0.1:5433/reef");
            System.exit(2);
        }
        URI uri = URI.create(url);
        user = uri.getUserInfo() == null ? "reef" : uri.getUserInfo().split(":")[0];
        jdbcUrl = "jdbc:postgresql://" + uri.getHost() + ":" + (uri.getPort() < 0 ? 5432 : uri.getPort()) + uri.getPath() + "?user=" + user;

        TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
        check("connect (text and binary connections) and SELECT 1", () -> {
            text = connect("binaryTransfer=false");
            binary = connect("prepareThreshold=1");
            expect(count(text, "SELECT 1") == 1 && count(binary, "SELECT 1") == 1, "SELECT 1 did not return 1");
            try (Statement st = text.createStatement(); ResultSet rs = st.executeQuery("SELECT version()")) {
                rs.next();
                isReef = rs.getString(1).contains("reefdb");
            }
        });
        if (text == null || binary == null) {
            System.out.println("cannot connect; stopping");
            System.exit(1);
        }
        System.out.println("     server: " + (isReef ? "reef " : "PostgreSQL ") + text.getMetaData().getDatabaseProductVersion());

        check("create the items table (dropping it first)", () ->
            recreate(ITEMS, "id integer PRIMARY KEY, name text NOT NULL, qty integer, price numeric(10,2)"));

        for (boolean useBinary : new boolean[] {false, true}) {
            check("parameterised INSERT and SELECT (" + (useBinary ? "binary" : "text") + ")", () -> {
                Connection c = useBinary ? binary : text;
                int base = useBinary ? 100 : 0;
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + ITEMS + " (id, name, qty, price) VALUES (?, ?, ?, ?)")) {
                    for (int i = 1; i <= 5; i++) {
                        ps.setInt(1, base + i);
                        ps.setString(2, "item " + i + " ✓");
                        ps.setInt(3, i * 10);
                        ps.setBigDecimal(4, new BigDecimal(i + ".25"));
                        expect(ps.executeUpdate() == 1, "INSERT did not report one row");
                    }
                }
                try (PreparedStatement ps = c.prepareStatement("SELECT id, name, qty, price FROM " + ITEMS + " WHERE id > ? AND id <= ? ORDER BY id")) {
                    for (int run = 0; run < 2; run++) {
                        ps.setInt(1, base);
                        ps.setInt(2, base + 5);
                        try (ResultSet rs = ps.executeQuery()) {
                            for (int i = 1; i <= 5; i++) {
                                expect(rs.next(), "row " + i + " missing");
                                expect(rs.getInt(1) == base + i && rs.getString(2).equals("item " + i + " ✓") && rs.getInt(3) == i * 10
                                        && rs.getBigDecimal(4).equals(new BigDecimal(i + ".25")), "row " + i + " is wrong");
                            }
                            expect(!rs.next(), "too many rows");
                            int format = rs.getMetaData().unwrap(PGResultSetMetaData.class).getFormat(1);
                            expect(format == (useBinary && run == 1 ? 1 : 0), "execution " + (run + 1) + " came back in format " + format);
                        }
                    }
                }
            });
        }

        check("UPDATE and DELETE report row counts; RETURNING and getGeneratedKeys return rows", () -> {
            try (PreparedStatement ps = text.prepareStatement("UPDATE " + ITEMS + " SET qty = qty + ? WHERE id <= ?")) {
                ps.setInt(1, 1);
                ps.setInt(2, 5);
                expect(ps.executeUpdate() == 5, "UPDATE did not report 5 rows");
            }
            try (PreparedStatement ps = text.prepareStatement("DELETE FROM " + ITEMS + " WHERE id = ? RETURNING id, qty")) {
                ps.setInt(1, 5);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next() && rs.getInt(1) == 5 && rs.getInt(2) == 51 && !rs.next(), "DELETE ... RETURNING did not return (5, 51)");
                }
            }
            // Applications (and Hibernate) read generated keys this way; pgJDBC appends RETURNING.
            try (PreparedStatement ps = text.prepareStatement("INSERT INTO " + ITEMS + " (id, name) VALUES (?, ?)", new String[] {"id"})) {
                ps.setInt(1, 50);
                ps.setString(2, "keyed");
                ps.executeUpdate();
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    expect(keys.next() && keys.getInt(1) == 50, "getGeneratedKeys did not return 50");
                }
            }
        });

        check("a prepared INSERT and SELECT each executed 200 times (binary after server-prepare)", () -> {
            recreate(PREFIX + "prepared", "id integer PRIMARY KEY, v text");
            try (PreparedStatement ins = binary.prepareStatement("INSERT INTO " + PREFIX + "prepared (id, v) VALUES (?, ?)");
                 PreparedStatement sel = binary.prepareStatement("SELECT id, v FROM " + PREFIX + "prepared WHERE id = ?")) {
                for (int i = 0; i < 200; i++) {
                    ins.setInt(1, i);
                    ins.setString(2, "v" + i);
                    ins.executeUpdate();
                }
                for (int i = 0; i < 200; i++) {
                    sel.setInt(1, i);
                    try (ResultSet rs = sel.executeQuery()) {
                        expect(rs.next() && rs.getInt(1) == i && rs.getString(2).equals("v" + i), "execution " + i + " returned a wrong row");
                    }
                }
            }
            expect(count(text, "SELECT count(*) FROM " + PREFIX + "prepared") == 200, "count is not 200");
        });

        check("a batch of 100 inserts (addBatch/executeBatch) reports each row", () -> {
            try (PreparedStatement ps = binary.prepareStatement("INSERT INTO " + PREFIX + "prepared (id, v) VALUES (?, ?)")) {
                for (int i = 1000; i < 1100; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "batch");
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                expect(counts.length == 100 && Arrays.stream(counts).allMatch(x -> x == 1), "batch counts " + Arrays.toString(counts));
            }
            expect(count(text, "SELECT count(*) FROM " + PREFIX + "prepared WHERE v = 'batch'") == 100, "batch rows missing");
        });

        check("a result read 10 rows at a time (setFetchSize in a transaction) returns every row", () -> {
            binary.setAutoCommit(false);
            try (PreparedStatement ps = binary.prepareStatement("SELECT id FROM " + PREFIX + "prepared WHERE id < ? ORDER BY id")) {
                ps.setFetchSize(10);
                ps.setInt(1, 200);
                long sum = 0, rows = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        sum += rs.getInt(1);
                        rows++;
                    }
                }
                expect(rows == 200 && sum == 19900, "got " + rows + " rows summing to " + sum);
            }
            binary.commit();
            binary.setAutoCommit(true);
        });

        check("a rolled-back transaction leaves no rows; a committed one is seen by another connection", () -> {
            String table = PREFIX + "txn";
            recreate(table, "id integer PRIMARY KEY, v text");
            binary.setAutoCommit(false);
            exec(binary, "INSERT INTO " + table + " VALUES (1, 'a'), (2, 'b')");
            expect(count(binary, "SELECT count(*) FROM " + table) == 2, "rows are not visible inside their transaction");
            binary.rollback();
            expect(count(binary, "SELECT count(*) FROM " + table) == 0, "rolled-back rows are still there");
            exec(binary, "INSERT INTO " + table + " VALUES (3, 'c')");
            binary.commit();
            binary.setAutoCommit(true);
            expect(count(text, "SELECT count(*) FROM " + table + " WHERE id = 3") == 1, "the other connection does not see the commit");
        });

        check("an error inside a transaction aborts it (25P02) until rollback; the rows are gone", () -> {
            String table = PREFIX + "txn";
            text.setAutoCommit(false);
            exec(text, "INSERT INTO " + table + " VALUES (10, 'x')");
            try {
                exec(text, "INSERT INTO " + table + " VALUES (3, 'duplicate')");
                throw new CheckFailed("the duplicate INSERT succeeded");
            } catch (SQLException e) {
                expect("23505".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ", want 23505");
            }
            try {
                exec(text, "SELECT 1");
                throw new CheckFailed("a statement after the error succeeded inside the failed transaction");
            } catch (SQLException e) {
                expect("25P02".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ", want 25P02");
            }
            text.rollback();
            text.setAutoCommit(true);
            expect(count(text, "SELECT count(*) FROM " + table + " WHERE id = 10") == 0, "row 10 survived the rollback");
        });

        check("errors carry their SQLSTATE and the connection keeps working", () -> {
            expectSqlstate("23505", "INSERT INTO " + PREFIX + "txn VALUES (3, 'again')");
            expectSqlstate("42P01", "SELECT * FROM " + PREFIX + "no_such_table");
            expectSqlstate("22012", "SELECT 1 / 0");
            expectSqlstate("42601", "SELEC 1");
            expectSqlstate("22P02", "SELECT 'not a number'::integer");
            expectSqlstate("23502", "INSERT INTO " + ITEMS + " (id, name) VALUES (60, NULL)");
            expectSqlstate("22003", "SELECT 32767::smallint + 1::smallint");
            expectSqlstate("42703", "SELECT no_such_column FROM " + ITEMS);
            // The same through a server-prepared statement on the binary connection.
            try (PreparedStatement ps = binary.prepareStatement("SELECT 10 / ?")) {
                ps.setInt(1, 0);
                ps.executeQuery().close();
                throw new CheckFailed("10 / 0 succeeded");
            } catch (SQLException e) {
                expect("22012".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ", want 22012");
            }
            expect(count(binary, "SELECT 1") == 1, "the binary connection does not answer after the error");
        });

        List<Case> cases = cases();
        check("NULL in a column of every type reads back as null (text and binary)", () -> {
            String table = PREFIX + "nulls";
            StringBuilder cols = new StringBuilder("id integer PRIMARY KEY");
            for (int i = 0; i < cases.size(); i++) cols.append(", c").append(i).append(' ').append(cases.get(i).sqlType());
            recreate(table, cols.toString());
            exec(text, "INSERT INTO " + table + " (id) VALUES (1)");
            StringBuilder names = new StringBuilder(), marks = new StringBuilder();
            for (int i = 0; i < cases.size(); i++) {
                names.append(", c").append(i);
                marks.append(", ?");
            }
            try (PreparedStatement ps = binary.prepareStatement("INSERT INTO " + table + " (id" + names + ") VALUES (2" + marks + ")")) {
                // Typed NULLs where JDBC has a type for the column, untyped ones elsewhere.
                int[] jdbcTypes = {Types.BOOLEAN, Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.REAL, Types.DOUBLE, Types.NUMERIC};
                for (int i = 0; i < cases.size(); i++) {
                    if (i < jdbcTypes.length) ps.setNull(i + 1, jdbcTypes[i]);
                    else ps.setObject(i + 1, null);
                }
                ps.executeUpdate();
            }
            for (Connection c : List.of(text, binary)) {
                try (PreparedStatement ps = c.prepareStatement("SELECT * FROM " + table + " WHERE id > ? ORDER BY id")) {
                    for (int run = 0; run < 2; run++) {
                        ps.setInt(1, 0);
                        try (ResultSet rs = ps.executeQuery()) {
                            for (int row = 1; row <= 2; row++) {
                                expect(rs.next(), "row " + row + " missing");
                                for (int i = 0; i < cases.size(); i++) {
                                    expect(rs.getObject(i + 2) == null && rs.getString(i + 2) == null, cases.get(i).sqlType() + " is not null");
                                }
                            }
                        }
                    }
                }
            }
        });

        for (int n = 0; n < cases.size(); n++) {
            Case c = cases.get(n);
            int index = n;
            check(c.label() + " round-trips exactly (text)", () -> roundTrip(index, c, false));
            check(c.label() + " round-trips exactly (binary)", () -> roundTrip(index, c, true));
        }
        for (boolean useBinary : new boolean[] {false, true}) {
            check("numeric beyond 29 digits and NaN round-trip exactly (reef: refused with 22003/0A000, a known limit) ("
                + (useBinary ? "binary" : "text") + ")", () -> numericBeyond(useBinary));
        }

        check("LocalDate.MAX/MIN and infinite timestamps (pgJDBC sends them as infinity) round-trip (reef: refused with 0A000, a known limit)", () -> {
            String table = PREFIX + "extremes";
            recreate(table, "id integer PRIMARY KEY, d date, ts timestamp, tz timestamptz");
            List<String> problems = new ArrayList<>();
            Object[][] rows = {
                {1, "d", LocalDate.MAX, LocalDate.class}, {2, "d", LocalDate.MIN, LocalDate.class},
                {3, "ts", LocalDateTime.MAX, LocalDateTime.class}, {4, "ts", LocalDateTime.MIN, LocalDateTime.class},
                {5, "tz", OffsetDateTime.MAX, OffsetDateTime.class}, {6, "tz", OffsetDateTime.MIN, OffsetDateTime.class},
            };
            for (Object[] r : rows) {
                try (PreparedStatement ins = text.prepareStatement("INSERT INTO " + table + " (id, " + r[1] + ") VALUES (?, ?)");
                     PreparedStatement sel = text.prepareStatement("SELECT " + r[1] + " FROM " + table + " WHERE id = ?")) {
                    ins.setInt(1, (Integer) r[0]);
                    ins.setObject(2, r[2]);
                    ins.executeUpdate();
                    if (isReef) {
                        problems.add(r[2] + " was accepted; reef's known limit says infinity is refused with 0A000");
                        continue;
                    }
                    sel.setInt(1, (Integer) r[0]);
                    try (ResultSet rs = sel.executeQuery()) {
                        rs.next();
                        Object got = rs.getObject(1, (Class<?>) r[3]);
                        if (!Objects.equals(got, r[2])) problems.add(r[2] + ": got " + got);
                    }
                } catch (SQLException e) {
                    if (!(isReef && "0A000".equals(e.getSQLState()) && e.getMessage().contains("infinite"))) {
                        problems.add(r[2] + ": SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
                    }
                }
            }
            expect(problems.isEmpty(), String.join("; ", problems));
            expect(count(text, "SELECT count(*) FROM " + table) == (isReef ? 0 : rows.length), "wrong number of rows stored");
        });

        check("a JVM in another time zone gets that session time zone (pgJDBC's TimeZone startup parameter; reef: refused with 0A000, a known limit)", () -> {
            TimeZone saved = TimeZone.getDefault();
            Connection c;
            try {
                TimeZone.setDefault(TimeZone.getTimeZone("America/New_York"));
                c = connect("binaryTransfer=false");
                expect(!isReef, "reef accepted TimeZone=America/New_York; its known limit says it refuses it");
            } catch (SQLException e) {
                // reef runs in UTC only, and refuses another zone rather than silently keep UTC.
                expect(isReef && "0A000".equals(e.getSQLState()) && e.getMessage().contains("time zone \"America/New_York\" is not supported"),
                    "SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
                return;
            } finally {
                TimeZone.setDefault(saved);
            }
            try (c; Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT current_setting('TimeZone'), '2024-07-01 12:00:00'::timestamptz")) {
                rs.next();
                expect(rs.getString(1).equals("America/New_York"), "session TimeZone is " + rs.getString(1));
                OffsetDateTime got = rs.getObject(2, OffsetDateTime.class);
                expect(got.isEqual(OffsetDateTime.of(2024, 7, 1, 16, 0, 0, 0, ZoneOffset.UTC)),
                    "'2024-07-01 12:00:00'::timestamptz is " + got + ", want 2024-07-01T16:00Z (noon in New York)");
            }
        });

        check("a running query is cancelled (57014) and the connection keeps working", () -> {
            // A count over a three-way cross join of 200 rows (8 million rows) runs for a good
            // part of a second on PostgreSQL, long enough to be cancelled after 50 ms.
            String table = PREFIX + "cross";
            recreate(table, "id integer PRIMARY KEY");
            StringBuilder values = new StringBuilder();
            for (int i = 0; i < 200; i++) values.append(i == 0 ? "" : ", ").append('(').append(i).append(')');
            exec(text, "INSERT INTO " + table + " VALUES " + values);
            // Statement.cancel() sends one CancelRequest per execution, and PostgreSQL drops one
            // that arrives before the query has reached it; so the cancel is sent through
            // PGConnection.cancelQuery() every 50 ms until the query ends.
            PGConnection pg = text.unwrap(PGConnection.class);
            ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
            long started = System.nanoTime();
            try (Statement st = text.createStatement()) {
                timer.scheduleWithFixedDelay(() -> {
                    try {
                        pg.cancelQuery();
                    } catch (SQLException e) {
                        throw new RuntimeException(e);
                    }
                }, 50, 50, TimeUnit.MILLISECONDS);
                st.executeQuery("SELECT count(*) FROM " + table + " a, " + table + " b, " + table + " c").close();
                throw new CheckFailed(String.format("the query was not cancelled: it finished after %.1fs", (System.nanoTime() - started) / 1e9));
            } catch (SQLException e) {
                expect("57014".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ", want 57014");
            } finally {
                timer.shutdownNow();
                timer.awaitTermination(10, TimeUnit.SECONDS);
            }
            expect(count(text, "SELECT 1") == 1, "the connection does not answer after the cancel");
        });

        check("DatabaseMetaData lists the items table and its columns (as migration tools and ORMs read them; reef without pg_catalog: 42P01, a known limit)", () -> {
            DatabaseMetaData md = text.getMetaData();
            try {
                try (ResultSet rs = md.getTables(null, "public", ITEMS, new String[] {"TABLE"})) {
                    expect(rs.next() && rs.getString("TABLE_NAME").equals(ITEMS), "getTables does not list " + ITEMS);
                }
                List<String> columns = new ArrayList<>();
                try (ResultSet rs = md.getColumns(null, "public", ITEMS, null)) {
                    while (rs.next()) columns.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
                }
                expect(columns.equals(List.of("id int4", "name text", "qty int4", "price numeric")), "getColumns says " + columns);
            } catch (SQLException e) {
                if (!noPgCatalogYet(e)) throw e;
            }
        });

        check("a role with a SCRAM-SHA-256 password (" + SCRAM_USER + ") connects with it; a wrong password is refused (28P01)", () -> {
            // The trusted initial role creates it. (A PostgreSQL server needs a pg_hba.conf line
            // making this role give its password: see tests/drivers/README.md.)
            exec(text, "DROP USER IF EXISTS " + SCRAM_USER);
            exec(text, "CREATE USER " + SCRAM_USER + " PASSWORD 'pw'");
            String scramUrl = jdbcUrl.replace("?user=" + user, "?user=" + SCRAM_USER);
            try (Connection c = DriverManager.getConnection(scramUrl + "&password=pw");
                 Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SHOW session_authorization")) {
                // session_authorization names the role logged in.
                expect(rs.next() && SCRAM_USER.equals(rs.getString(1)), "logged in as " + rs.getString(1));
            }
            try (Connection c = DriverManager.getConnection(scramUrl + "&password=wrong")) {
                throw new CheckFailed("the wrong password was accepted");
            } catch (SQLException e) {
                expect("28P01".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ": " + e.getMessage() + ", want 28P01");
            }
            // Without a password, pgJDBC cannot answer the server's request for one.
            try (Connection c = DriverManager.getConnection(scramUrl)) {
                throw new CheckFailed("the connection without a password was accepted");
            } catch (SQLException e) {
                expect("08004".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ": " + e.getMessage() + ", want 08004");
            }
        });

        if (System.getenv("REEF_TLS") == null || !System.getenv("REEF_TLS").equals("0")) {
            check("sslmode=require connects over TLS (and sslmode=disable without)", () -> {
                // sslmode=require encrypts without checking the (self-signed) certificate, and
                // fails if the server does not do TLS.
                try (Connection c = connect("sslmode=require"); Statement st = c.createStatement();
                     ResultSet rs = st.executeQuery("SELECT 'over TLS'")) {
                    expect(rs.next() && rs.getString(1).equals("over TLS"), "wrong answer over TLS");
                }
                try (Connection c = connect("sslmode=disable")) {
                    expect(count(c, "SELECT 1") == 1, "wrong answer without TLS");
                }
            });
        } else {
            System.out.println("     (TLS not checked: REEF_TLS=0)");
        }

        check("DatabaseMetaData: primary key, indexes, foreign keys and schemas", () -> {
            try (Statement st = text.createStatement()) {
                st.execute("CREATE INDEX IF NOT EXISTS " + ITEMS + "_name_idx ON " + ITEMS + " (name)");
            }
            DatabaseMetaData md = text.getMetaData();
            List<String> pk = new ArrayList<>();
            try (ResultSet rs = md.getPrimaryKeys(null, "public", ITEMS)) {
                while (rs.next()) pk.add(rs.getString("COLUMN_NAME") + " " + rs.getInt("KEY_SEQ") + " " + rs.getString("PK_NAME"));
            }
            expect(pk.equals(List.of("id 1 " + ITEMS + "_pkey")), "getPrimaryKeys says " + pk);
            List<String> idx = new ArrayList<>();
            try (ResultSet rs = md.getIndexInfo(null, "public", ITEMS, false, true)) {
                while (rs.next()) idx.add(rs.getString("INDEX_NAME") + " " + rs.getString("COLUMN_NAME") + " " + rs.getBoolean("NON_UNIQUE"));
            }
            expect(idx.equals(List.of(ITEMS + "_pkey id false", ITEMS + "_name_idx name true")), "getIndexInfo says " + idx);
            try (ResultSet rs = md.getImportedKeys(null, "public", ITEMS)) {
                expect(!rs.next(), "getImportedKeys lists a foreign key");
            }
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            expect(schemas.contains("public") && schemas.contains("pg_catalog") && schemas.contains("information_schema"), "getSchemas says " + schemas);
        });

        for (Connection c : Arrays.asList(text, binary)) {
            if (c != null) c.close();
        }
        if (!failed.isEmpty()) System.out.println("failed checks:\n  - " + String.join("\n  - ", failed));
        System.out.println("pgJDBC " + org.postgresql.util.DriverInfo.DRIVER_VERSION + " on Java " + System.getProperty("java.version"));
        System.out.println("pgJDBC: " + passed + " passed, " + failed.size() + " failed");
        System.exit(failed.isEmpty() ? 0 : 1);
    }
}
