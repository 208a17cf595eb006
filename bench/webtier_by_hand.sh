#!/bin/bash
# A fifth hand-written case, a web tier in its own log formats (nginx's error log, HAProxy's health checks, the
# kernel's OOM killer, relayed as RFC 3164 lines by socat) with Alertmanager on the service: app-21's JVM is killed
# for memory, HAProxy takes app-21 out, nginx on web-1 fails to reach it for four different clients, the shop's
# error rate alerts; meanwhile, apart, someone guesses passwords on web-1 itself and app-22's disk fills.
# Sent to a running system (`make run`). Not tuned on.
#   BASE=http://127.0.0.1:3009 KEY=<admin key> bench/webtier_by_hand.sh
# Expect: one incident of the app-21 failure (OOM kill, HAProxy's DOWN, nginx's four lines, the error-rate alert);
# the password guesses on web-1 apart (though on the host whose nginx lines name clients' addresses too); the disk apart.
B=${BASE:-http://127.0.0.1:3009}; KEY=${KEY:-$(cat var/admin.key)}; SYSLOG_PORT=${SYSLOG_PORT:-5514}
H=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bsd() {  # bsd PRI HOST TAG MESSAGE: one RFC 3164 line as a relay forwards it
  printf '<%s>%s %s %s: %s' "$1" "$(LC_ALL=C date -u '+%b %e %H:%M:%S')" "$2" "$3" "$4" | socat -u - UDP:127.0.0.1:$SYSLOG_PORT
}
curl -s "${H[@]}" -X PUT $B/api/v1/topology -d '{
 "nodes":[{"id":"lb-1","kind":"load_balancer","addresses":["10.1.0.5"]},{"id":"web-1","kind":"host","addresses":["10.1.0.11"]},
  {"id":"app-21","kind":"host","addresses":["10.1.1.21"]},{"id":"app-22","kind":"host","addresses":["10.1.1.22"]},
  {"id":"shop","kind":"service"}],
 "edges":[{"from":"shop","to":"app-21","kind":"runs_on"},{"from":"shop","to":"app-22","kind":"runs_on"},
  {"from":"shop","to":"lb-1","kind":"depends_on"}]}' -o /dev/null -w '%{http_code} '
sleep 11
for p in 51022 51023 51024; do bsd 38 web-1 "sshd[$p]" "Failed password for root from 198.51.100.77 port $p ssh2"; done
bsd 3 app-21 kernel 'Out of memory: Killed process 2211 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB, UID:1001 pgtables:9876kB oom_score_adj:0'
bsd 129 lb-1 'haproxy[990]' 'Server shop_backend/app-21 is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.'
i=0; for c in 203.0.113.9 203.0.113.40 192.0.2.77 198.51.100.3; do i=$((i+1))
  bsd 187 web-1 'nginx' "$(date -u '+%Y/%m/%d %H:%M:%S') [error] 1234#1234: *56$i connect() failed (111: Connection refused) while connecting to upstream, client: $c, server: shop.example.com, request: \"GET /cart HTTP/1.1\", upstream: \"http://10.1.1.21:8080/cart\", host: \"shop.example.com\""
done
curl -s "${H[@]}" $B/api/v1/events/webhook/alertmanager -d '{"version":"4","groupKey":"{}:{alertname=\"HighErrorRate\"}","status":"firing","receiver":"oc","groupLabels":{"alertname":"HighErrorRate"},"commonLabels":{"alertname":"HighErrorRate","service":"shop"},"externalURL":"http://am:9093","alerts":[
 {"status":"firing","labels":{"alertname":"HighErrorRate","service":"shop","severity":"critical"},"annotations":{"summary":"shop: 7.2% of requests fail with 5xx"},"startsAt":"'$NOW'","fingerprint":"her1"}]}' -o /dev/null -w '%{http_code} '
for p in 51025 51026; do bsd 38 web-1 "sshd[$p]" "Failed password for root from 198.51.100.77 port $p ssh2"; done
curl -s "${H[@]}" $B/api/v1/events/webhook -d '{"source":"zabbix","severity":"medium","host":"app-22","title":"Free disk space is less than 15% on volume /"}' -o /dev/null -w '%{http_code} '
sleep 5
curl -s "${H[@]}" "$B/api/v1/incidents?limit=20" | python3 -c '
import json,sys
d=json.load(sys.stdin)
for i in d["incidents"]:
    print(i["status"], i.get("event_count"), i.get("title")[:100], sorted(i.get("hosts") or []))'
