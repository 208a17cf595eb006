#!/bin/bash
# A hand-written outage sent by real senders (net-snmp snmptrap, logger, curl) to a running system (`make run`):
# a switch uplink down behind which four hosts and the checkout service fail, a database disk filling and a
# brute force apart, then the uplink back; prints the incidents. Not tuned on: a check of what an operator sees.
#   BASE=http://127.0.0.1:3009 KEY=<admin key> bench/outage_by_hand.sh
# Expect: one closed incident (acc-sw-3, app-11..14, the checkout alert), the disk and the brute force apart.
# (logger writes this machine's own name in the header: the switch's syslog line shows up as that host's.)
B=${BASE:-http://127.0.0.1:3009}; KEY=${KEY:-$(cat var/admin.key)}; SNMP=${SNMP:-127.0.0.1:1162}; SYSLOG_PORT=${SYSLOG_PORT:-5514}
H=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
curl -s "${H[@]}" -X PUT $B/api/v1/topology -d '{
 "nodes":[{"id":"core-rtr-1","kind":"router","addresses":["10.0.0.1"]},
  {"id":"acc-sw-3","kind":"switch","addresses":["10.0.3.1"]},{"id":"acc-sw-4","kind":"switch","addresses":["10.0.4.1"]},
  {"id":"app-11","kind":"host","addresses":["10.0.3.11"]},{"id":"app-12","kind":"host","addresses":["10.0.3.12"]},
  {"id":"app-13","kind":"host","addresses":["10.0.3.13"]},{"id":"app-14","kind":"host","addresses":["10.0.3.14"]},
  {"id":"db-pg-2","kind":"database","addresses":["10.0.4.20"]},{"id":"bastion-1","kind":"host"},
  {"id":"checkout","kind":"service"}],
 "edges":[{"from":"acc-sw-3","to":"core-rtr-1","kind":"connected_to"},{"from":"acc-sw-4","to":"core-rtr-1","kind":"connected_to"},
  {"from":"app-11","to":"acc-sw-3","kind":"connected_to"},{"from":"app-12","to":"acc-sw-3","kind":"connected_to"},
  {"from":"app-13","to":"acc-sw-3","kind":"connected_to"},{"from":"app-14","to":"acc-sw-3","kind":"connected_to"},
  {"from":"db-pg-2","to":"acc-sw-4","kind":"connected_to"},
  {"from":"checkout","to":"app-11","kind":"runs_on"},{"from":"checkout","to":"app-12","kind":"runs_on"}]}' | head -c 200; echo
sleep 11
export MIBS=""
# the switch's uplink goes down (v1 trap, agent address 10.0.3.1)
snmptrap -v 1 -c public $SNMP 1.3.6.1.4.1.9 10.0.3.1 2 0 '' 1.3.6.1.2.1.2.2.1.1.48 i 48 1.3.6.1.2.1.2.2.1.2.48 s GigabitEthernet1/0/48
logger -n 127.0.0.1 -P $SYSLOG_PORT -d --rfc3164 -t '' "%LINK-3-UPDOWN: Interface GigabitEthernet1/0/48, changed state to down" 2>/dev/null
sleep 2
# Alertmanager: node exporter targets down, by instance ip:port
curl -s "${H[@]}" $B/api/v1/events/webhook/alertmanager -d '{"version":"4","groupKey":"{}:{alertname=\"InstanceDown\"}","status":"firing","receiver":"oc","groupLabels":{"alertname":"InstanceDown"},"commonLabels":{"alertname":"InstanceDown","job":"node","severity":"critical"},"externalURL":"http://am:9093","alerts":[
 {"status":"firing","labels":{"alertname":"InstanceDown","instance":"10.0.3.11:9100","job":"node","severity":"critical"},"annotations":{"summary":"Instance 10.0.3.11:9100 down"},"startsAt":"2026-12-07T21:20:00Z","fingerprint":"a11"},
 {"status":"firing","labels":{"alertname":"InstanceDown","instance":"10.0.3.12:9100","job":"node","severity":"critical"},"annotations":{"summary":"Instance 10.0.3.12:9100 down"},"startsAt":"2026-12-07T21:20:00Z","fingerprint":"a12"},
 {"status":"firing","labels":{"alertname":"InstanceDown","instance":"10.0.3.13:9100","job":"node","severity":"critical"},"annotations":{"summary":"Instance 10.0.3.13:9100 down"},"startsAt":"2026-12-07T21:20:00Z","fingerprint":"a13"},
 {"status":"firing","labels":{"alertname":"InstanceDown","instance":"10.0.3.14:9100","job":"node","severity":"critical"},"annotations":{"summary":"Instance 10.0.3.14:9100 down"},"startsAt":"2026-12-07T21:20:00Z","fingerprint":"a14"}]}' >/dev/null
# the load balancer sees checkout failing (Grafana)
curl -s "${H[@]}" $B/api/v1/events/webhook/grafana -d '{"receiver":"oc","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CheckoutErrors","service":"checkout","severity":"critical"},"annotations":{"summary":"checkout 5xx rate 38%"},"startsAt":"2026-12-07T21:20:05Z","fingerprint":"g1"}],"title":"[FIRING:1] CheckoutErrors"}' >/dev/null
# unrelated: a database disk filling, and a brute force on the bastion
curl -s "${H[@]}" $B/api/v1/events/webhook -d '{"source":"zabbix","severity":"high","host":"db-pg-2","service":"postgresql","title":"Disk usage 91% on /var/lib/postgresql"}' >/dev/null
for i in 1 2 3 4 5 6; do logger -n 127.0.0.1 -P $SYSLOG_PORT -d --rfc3164 -t sshd -p auth.warning "Failed password for root from 203.0.113.5 port 5$i$i$i ssh2" 2>/dev/null; done
sleep 5
# recovery
snmptrap -v 1 -c public $SNMP 1.3.6.1.4.1.9 10.0.3.1 3 0 '' 1.3.6.1.2.1.2.2.1.1.48 i 48 1.3.6.1.2.1.2.2.1.2.48 s GigabitEthernet1/0/48
sleep 5
curl -s "${H[@]}" "$B/api/v1/incidents?limit=20" | python3 -c '
import json,sys
d=json.load(sys.stdin)
for i in d["incidents"]:
    print(i["status"], i.get("event_count"), i.get("title"), sorted(i.get("hosts") or []))'
