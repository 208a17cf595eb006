#!/bin/bash
# A fourth hand-written case, a network edge in Cisco IOS's words (RFC 3164 lines as a relay forwards them, an SNMP
# v2c BGP trap) with the router declared and nothing behind it: the router's BGP session to its provider drops on a
# hold timer and comes back, while its fan 2 fails (the same device, another problem) and the blackbox exporter's
# probes of two outside sites fail with the session. Sent to a running system (`make run`). Not tuned on.
#   BASE=http://127.0.0.1:3009 KEY=<admin key> bench/uplink_by_hand.sh
# Expect: the session's drop (both syslog lines and the trap) and its return as one closed incident; the fan apart,
# though on the same router within the same minute.
B=${BASE:-http://127.0.0.1:3009}; KEY=${KEY:-$(cat var/admin.key)}; SNMP=${SNMP:-127.0.0.1:1162}; SYSLOG_PORT=${SYSLOG_PORT:-5514}
H=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ios() {  # ios PRI SEQ MESSAGE: one IOS line from edge-rtr-2 as a relay forwards it (RFC 3164 with the host name)
  printf '<%s>%s edge-rtr-2 %s: *%s: %s' "$1" "$(LC_ALL=C date -u '+%b %e %H:%M:%S')" "$2" "$(LC_ALL=C date -u '+%b %e %H:%M:%S.%3N')" "$3" \
    | socat -u - UDP:127.0.0.1:$SYSLOG_PORT
}
curl -s "${H[@]}" -X PUT $B/api/v1/topology -d '{"nodes":[{"id":"edge-rtr-2","kind":"router","addresses":["10.2.0.1"]}],"edges":[]}' -o /dev/null -w '%{http_code} '
sleep 11
ios 187 4711 '%BGP-3-NOTIFICATION: sent to neighbor 198.51.100.1 4/0 (hold time expired) 0 bytes'
ios 189 4712 '%BGP-5-ADJCHANGE: neighbor 198.51.100.1 Down BGP Notification sent'
export MIBS=""
# BGP4-MIB bgpBackwardTransition, with the peer's address and state (idle), through a trap forwarder that keeps the
# router's own address in snmpTrapAddress.0 (RFC 3584)
snmptrap -v 2c -c public $SNMP '' 1.3.6.1.2.1.15.7.2 1.3.6.1.6.3.18.1.3.0 a 10.2.0.1 1.3.6.1.2.1.15.3.1.7.198.51.100.1 a 198.51.100.1 1.3.6.1.2.1.15.3.1.2.198.51.100.1 i 1
ios 186 4713 '%ENVMON-2-FAN_FAILED: Fan 2 had a rotation error reported'
curl -s "${H[@]}" $B/api/v1/events/webhook/alertmanager -d '{"version":"4","groupKey":"{}:{alertname=\"ProbeFailed\"}","status":"firing","receiver":"oc","groupLabels":{"alertname":"ProbeFailed"},"commonLabels":{"alertname":"ProbeFailed","job":"blackbox"},"externalURL":"http://am:9093","alerts":[
 {"status":"firing","labels":{"alertname":"ProbeFailed","instance":"https://status.partner.example.net","job":"blackbox","severity":"critical"},"annotations":{"summary":"Probe failed (instance https://status.partner.example.net)"},"startsAt":"'$NOW'","fingerprint":"pf1"},
 {"status":"firing","labels":{"alertname":"ProbeFailed","instance":"https://api.payments-provider.example.com","job":"blackbox","severity":"critical"},"annotations":{"summary":"Probe failed (instance https://api.payments-provider.example.com)"},"startsAt":"'$NOW'","fingerprint":"pf2"}]}' -o /dev/null -w '%{http_code} '
sleep 5
ios 189 4714 '%BGP-5-ADJCHANGE: neighbor 198.51.100.1 Up'
sleep 5
curl -s "${H[@]}" "$B/api/v1/incidents?limit=20" | python3 -c '
import json,sys
d=json.load(sys.stdin)
for i in d["incidents"]:
    print(i["status"], i.get("event_count"), i.get("title")[:90], sorted(i.get("hosts") or []))'
