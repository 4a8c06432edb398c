// Drives `demarc serve --flight-sql` through the Arrow Flight SQL JDBC driver (what
// DBeaver and other JDBC tools use), and prints what it saw, one fact per line.
//
//   java --add-opens=java.base/java.nio=ALL-UNNAMED -cp flight-sql-jdbc-driver.jar \
//       JdbcCheck.java HOST PORT TOKEN

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:arrow-flight-sql://" + args[0] + ":" + args[1] + "?useEncryption=false";
        Properties login = new Properties();
        login.setProperty("user", "analyst");
        login.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(url, login)) {
            DatabaseMetaData meta = conn.getMetaData();
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, null, "%", null)) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_CAT") + "." + rs.getString("TABLE_SCHEM") + "."
                            + rs.getString("TABLE_NAME") + ":" + rs.getString("TABLE_TYPE"));
                }
            }
            System.out.println("tables " + String.join(",", tables));
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, null, "events", "actor%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME"));
                }
            }
            System.out.println("columns " + String.join(",", columns));
            System.out.println("read-only " + meta.isReadOnly());
            try (Statement st = conn.createStatement();
                    ResultSet rs = st.executeQuery(
                            "SELECT provider, count(*) AS n FROM events GROUP BY provider ORDER BY provider")) {
                while (rs.next()) {
                    System.out.println("count " + rs.getString("provider") + " " + rs.getLong("n"));
                }
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT event_id FROM events WHERE operation = ? ORDER BY time, event_id")) {
                ps.setString(1, "StopLogging");
                try (ResultSet rs = ps.executeQuery()) {
                    List<String> ids = new ArrayList<>();
                    while (rs.next()) {
                        ids.add(rs.getString(1));
                    }
                    System.out.println("prepared " + String.join(",", ids));
                }
            }
            try (Statement st = conn.createStatement()) {
                st.executeQuery("DROP TABLE events");
                System.out.println("drop allowed");
            } catch (java.sql.SQLException e) {
                System.out.println("drop refused " + e.getMessage().replace('\n', ' '));
            }
        }
        String tokenUrl = url + "&token=" + args[2];
        try (Connection conn = DriverManager.getConnection(tokenUrl);
                Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT count(*) AS n FROM alerts")) {
            rs.next();
            System.out.println("token alerts " + rs.getLong(1));
        }
        Properties wrong = new Properties();
        wrong.setProperty("user", "analyst");
        wrong.setProperty("password", "wrong-password-for-sure");
        try (Connection conn = DriverManager.getConnection(url, wrong);
                Statement st = conn.createStatement()) {
            st.executeQuery("SELECT 1");
            System.out.println("wrong password allowed");
        } catch (java.sql.SQLException e) {
            System.out.println("wrong password refused");
        }
    }
}
