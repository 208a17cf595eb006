#!/bin/bash
# A second hand-written case, in other words and formats than the generator's and outage_by_hand.sh's, sent by
# real senders (socat relaying syslog lines as rsyslog would, net-snmp snmptrap, curl) to a running system
# (`make run`): a PostgreSQL primary's disk fills, it panics, Patroni promotes the replica, and the two services
# that use the database fail on their hosts meanwhile; at the same time, apart: a firewall's threat report
# (CEF), three web hosts' certificates expiring, a UPS on battery, and an unrelated disk warning and cron noise on
# one of the failing application hosts. Not tuned on: a check of what an operator sees.
#   BASE=http://127.0.0.1:3009 KEY=<admin key> bench/failover_by_hand.sh
# Expect: one incident of the database (db-1's panic and PostgresqlDown, Patroni's promotion on db-2, the orders
# and billing hosts' connection errors, the orders latency page, the billing alert); the threat, the certificates
# (one incident of three hosts), the UPS and app-21's /var/log warning each apart (the cron line, routine, joins the
# warning: a routine line on its host within CORRELATION_ROUTINE_WINDOW_MINUTES). Before the rules of 8 December 2026
# the database's ten events came out as seven incidents, the certificates on host "https".
B=${BASE:-http://127.0.0.1:3009}; KEY=${KEY:-$(cat var/admin.key)}; SNMP=${SNMP:-127.0.0.1:1162}; SYSLOG_PORT=${SYSLOG_PORT:-5514}
H=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
line() {  # line HOST APP PROCID MESSAGE [PRI]: one RFC 5424 line as a relay forwards it
  printf '<%s>1 %s %s %s %s - - %s' "${5:-11}" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$2" "$3" "$4" \
    | socat -u - UDP:127.0.0.1:$SYSLOG_PORT
}
curl -s "${H[@]}" -X PUT $B/api/v1/topology -d '{
 "nodes":[{"id":"tor-7","kind":"switch","addresses":["10.1.0.1"]},
  {"id":"db-1","kind":"host","addresses":["10.1.0.11"]},{"id":"db-2","kind":"host","addresses":["10.1.0.12"]},
  {"id":"pg-main","kind":"database","addresses":["10.1.0.10"]},
  {"id":"app-21","kind":"host","addresses":["10.1.1.21"]},{"id":"app-22","kind":"host","addresses":["10.1.1.22"]},
  {"id":"app-31","kind":"host","addresses":["10.1.1.31"]},
  {"id":"web-1","kind":"host"},{"id":"web-2","kind":"host"},{"id":"web-3","kind":"host"},
  {"id":"orders","kind":"service"},{"id":"billing","kind":"service"}],
 "edges":[{"from":"db-1","to":"tor-7","kind":"connected_to"},{"from":"db-2","to":"tor-7","kind":"connected_to"},
  {"from":"pg-main","to":"db-1","kind":"runs_on"},{"from":"pg-main","to":"db-2","kind":"runs_on"},
  {"from":"orders","to":"pg-main","kind":"depends_on"},{"from":"billing","to":"pg-main","kind":"depends_on"},
  {"from":"orders","to":"app-21","kind":"runs_on"},{"from":"orders","to":"app-22","kind":"runs_on"},
  {"from":"billing","to":"app-31","kind":"runs_on"}]}' | head -c 200; echo
sleep 11
# background: cron on app-21, a disk warning there that has nothing to do with the database
line app-21 CRON 30411 '(root) CMD (/usr/local/bin/rotate-orders-logs.sh)' 78
curl -s "${H[@]}" $B/api/v1/events/webhook -d '{"source":"zabbix","severity":"medium","host":"app-21","title":"Free disk space is less than 15% on volume /var/log"}' -o /dev/null -w '%{http_code} '
# the database's disk fills: WAL cannot be written, the primary panics
line db-1 postgres 812 '[3-1] PANIC:  could not write to file "pg_wal/xlogtemp.812": No space left on device' 10
line db-1 postgres 640 '[4-1] LOG:  server process (PID 812) was terminated by signal 6: Aborted' 11
# the clients lose it
line app-21 orders 2211 'ERROR sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly' 11
line app-22 orders 1893 'ERROR sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly' 11
line app-31 billing 77 'could not connect to server: Connection refused. Is the server running on host "pg-main" (10.1.0.10) and accepting TCP/IP connections on port 5432?' 11
curl -s "${H[@]}" $B/api/v1/events/webhook/alertmanager -d '{"version":"4","groupKey":"{}:{alertname=\"PostgresqlDown\"}","status":"firing","receiver":"oc","groupLabels":{"alertname":"PostgresqlDown"},"commonLabels":{"alertname":"PostgresqlDown","job":"postgres","severity":"critical"},"externalURL":"http://am:9093","alerts":[
 {"status":"firing","labels":{"alertname":"PostgresqlDown","instance":"10.1.0.11:9187","job":"postgres","severity":"critical"},"annotations":{"summary":"Postgresql down (instance 10.1.0.11:9187)"},"startsAt":"'$NOW'","fingerprint":"pgd1"}]}' -o /dev/null -w '%{http_code} '
# a synthetic check pages about orders; Grafana about billing's jobs
curl -s "${H[@]}" $B/api/v1/events/webhook/pagerduty -d '{"routing_key":"r0123456789abcdef0123456789abcdef","event_action":"trigger","dedup_key":"orders-latency","payload":{"summary":"orders API p95 latency 4.2 s (threshold 1 s)","source":"orders","severity":"error","component":"orders-api","class":"latency"}}' -o /dev/null -w '%{http_code} '
curl -s "${H[@]}" $B/api/v1/events/webhook/grafana -d '{"receiver":"oc","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"BillingJobsFailing","service":"billing","severity":"critical"},"annotations":{"summary":"billing: 14 invoice jobs failed in 5 min"},"startsAt":"'$NOW'","fingerprint":"bj1"}],"title":"[FIRING:1] BillingJobsFailing"}' -o /dev/null -w '%{http_code} '
# apart, meanwhile: the firewall reports an exploit attempt (CEF), a UPS goes on battery (SNMP v2c),
# three web hosts' certificates near expiry (Alertmanager, blackbox exporter)
line fw-edge-1 - - 'CEF:0|Palo Alto Networks|PAN-OS|10.2.4|THREAT|vulnerability|8|src=198.51.100.7 dst=10.1.2.15 dpt=443 act=reset-both cs1=Apache Log4j Remote Code Execution Vulnerability' 12
export MIBS=""
snmptrap -v 2c -c public $SNMP '' 1.3.6.1.2.1.33.2.1 1.3.6.1.2.1.33.1.2.3.0 i 42 1.3.6.1.2.1.33.1.2.1.0 i 2
curl -s "${H[@]}" $B/api/v1/events/webhook/alertmanager -d '{"version":"4","groupKey":"{}:{alertname=\"SSLCertExpiringSoon\"}","status":"firing","receiver":"oc","groupLabels":{"alertname":"SSLCertExpiringSoon"},"commonLabels":{"alertname":"SSLCertExpiringSoon","job":"blackbox","severity":"warning"},"externalURL":"http://am:9093","alerts":[
 {"status":"firing","labels":{"alertname":"SSLCertExpiringSoon","instance":"https://web-1.example.com","job":"blackbox","severity":"warning"},"annotations":{"summary":"SSL certificate expires in 6 days"},"startsAt":"'$NOW'","fingerprint":"c1"},
 {"status":"firing","labels":{"alertname":"SSLCertExpiringSoon","instance":"https://web-2.example.com","job":"blackbox","severity":"warning"},"annotations":{"summary":"SSL certificate expires in 6 days"},"startsAt":"'$NOW'","fingerprint":"c2"},
 {"status":"firing","labels":{"alertname":"SSLCertExpiringSoon","instance":"https://web-3.example.com","job":"blackbox","severity":"warning"},"annotations":{"summary":"SSL certificate expires in 6 days"},"startsAt":"'$NOW'","fingerprint":"c3"}]}' -o /dev/null -w '%{http_code} '
sleep 3
# Patroni promotes the replica; the clients reconnect
line db-2 patroni 1022 'INFO: promoted self to leader by acquiring session lock' 13
line db-2 postgres 955 '[2-1] LOG:  database system is ready to accept connections' 13
sleep 5
curl -s "${H[@]}" "$B/api/v1/incidents?limit=20" | python3 -c '
import json,sys
d=json.load(sys.stdin)
for i in d["incidents"]:
    print(i["status"], i.get("event_count"), i.get("title"), sorted(i.get("hosts") or []))'
