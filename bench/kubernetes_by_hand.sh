#!/bin/bash
# A third hand-written case, from a Kubernetes cluster as kube-prometheus reports it (kube-state-metrics' alerts carry
# the exporter's own address as their instance, the object in namespace/pod/node labels), with the node's kubelet on
# syslog, sent to a running system (`make run`) with no topology declared: node worker-3 stops being Ready and cart's
# pods on it with it; at the same time, apart, payments' new release crash-loops (its own log says why) and
# Prometheus' volume fills. Not tuned on: a check of what an operator sees.
#   BASE=http://127.0.0.1:3009 KEY=<admin key> bench/kubernetes_by_hand.sh
# Expect: worker-3's NotReady and its kubelet's errors as one incident; payments' crash loop apart from it, the volume
# filling apart from both, cart's two pods together. Not done: nothing declared says cart's pods run on worker-3 (their
# alerts do not name the node), and payments' crash-loop alerts and its panic lines come out as two incidents (only
# the workload's name, in the pod's, ties them). Before 8 December 2026 every kube-state-metrics alert was on the
# exporter's address, one "host" tying the volume to cart's pods.
B=${BASE:-http://127.0.0.1:3009}; KEY=${KEY:-$(cat var/admin.key)}; SYSLOG_PORT=${SYSLOG_PORT:-5514}
H=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
line() {  # line HOST APP PROCID MESSAGE [PRI]: one RFC 5424 line as a relay forwards it
  printf '<%s>1 %s %s %s %s - - %s' "${5:-11}" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$2" "$3" "$4" \
    | socat -u - UDP:127.0.0.1:$SYSLOG_PORT
}
am() {  # am NAME SEVERITY SUMMARY LABELS-JSON FINGERPRINT: one firing alert of kube-state-metrics
  curl -s "${H[@]}" $B/api/v1/events/webhook/alertmanager -d '{"version":"4","groupKey":"{}:{alertname=\"'$1'\"}","status":"firing","receiver":"oc","groupLabels":{"alertname":"'$1'"},"commonLabels":{"alertname":"'$1'"},"externalURL":"http://alertmanager.monitoring:9093","alerts":[
   {"status":"firing","labels":{"alertname":"'$1'","severity":"'$2'","job":"kube-state-metrics","instance":"10.244.0.12:8080",'$4'},"annotations":{"summary":"'"$3"'"},"startsAt":"'$NOW'","fingerprint":"'$5'"}]}' -o /dev/null -w '%{http_code} '
}
# payments' release starts crash-looping (its container logs, shipped by the node's journald to syslog)
line worker-1 payments-api 1 'panic: required environment variable PAYMENTS_PROVIDER_KEY is not set' 10
am KubePodCrashLooping warning 'Pod payments/payments-api-6d9f7c-x2x7q (api) is in waiting state (reason: \"CrashLoopBackOff\").' '"namespace":"payments","pod":"payments-api-6d9f7c-x2x7q","container":"api"' kpc1
line worker-2 payments-api 1 'panic: required environment variable PAYMENTS_PROVIDER_KEY is not set' 10
am KubePodCrashLooping warning 'Pod payments/payments-api-6d9f7c-9kq2m (api) is in waiting state (reason: \"CrashLoopBackOff\").' '"namespace":"payments","pod":"payments-api-6d9f7c-9kq2m","container":"api"' kpc2
# worker-3's container runtime hangs: the kubelet says so, the node goes NotReady, cart's pods on it with it
line worker-3 kubelet 1123 'E1208 04:01:12.381 1123 kubelet.go:2373] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m5.2s ago; threshold is 3m0s"' 11
line worker-3 kubelet 1123 'E1208 04:01:14.002 1123 kubelet_node_status.go:540] "Error updating node status, will retry" err="error getting node \"worker-3\": context deadline exceeded"' 11
am KubeNodeNotReady warning 'worker-3 has been unready for more than 15 minutes.' '"node":"worker-3","condition":"Ready","status":"true"' knr3
am KubePodNotReady warning 'Pod shop/cart-5b8d9c-7wz4p has been in a non-ready state for longer than 15 minutes.' '"namespace":"shop","pod":"cart-5b8d9c-7wz4p"' kpn1
am KubePodNotReady warning 'Pod shop/cart-5b8d9c-q8v2d has been in a non-ready state for longer than 15 minutes.' '"namespace":"shop","pod":"cart-5b8d9c-q8v2d"' kpn2
# apart: Prometheus' own volume filling
am KubePersistentVolumeFillingUp warning 'The PersistentVolume claimed by prometheus-k8s-db-prometheus-k8s-0 in Namespace monitoring is only 9.8% free.' '"namespace":"monitoring","persistentvolumeclaim":"prometheus-k8s-db-prometheus-k8s-0"' kpv1
sleep 5
curl -s "${H[@]}" "$B/api/v1/incidents?limit=20" | python3 -c '
import json,sys
d=json.load(sys.stdin)
for i in d["incidents"]:
    print(i["status"], i.get("event_count"), i.get("title")[:90], sorted(i.get("hosts") or []), sorted(i.get("services") or []))'
