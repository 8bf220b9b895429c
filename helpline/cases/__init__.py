"""Grid cases (数字城管): coded, located, dispatched and tracked urban-management problems.

models       the tables: cases, their reports and timeline, departments, routes, Open311 keys
data         city data: taxonomy and work calendar documents, departments and routing rules
worktime     working-time arithmetic (hours, days, holidays and make-up days)
service      reporting a case (with duplicate linking) and the workflow's transitions
workflow     the transition table and who may act
notify       reporter updates, department notices and the satisfaction question, via the outbox
timers       traffic lights and the escalation job
figures      the figures a centre is judged by
forwarding   new cases forwarded to an external platform (Open311 or a JSON webhook)
keys         Open311 API keys (environment and database)
"""
