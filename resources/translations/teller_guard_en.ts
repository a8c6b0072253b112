<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en" sourcelanguage="en">
<context>
    <name>Channels</name>
    <message>
        <source>Clipboard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screen capture</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Printing</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Removable drive</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Idle lock</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Files</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>System</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ConfirmDialog</name>
    <message>
        <source>Continue only if the customer&apos;s data is needed for this task. Confirm to continue, or cancel.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>C&amp;onfirm</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Events</name>
    <message>
        <source>Guard started</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Guard stopped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Copy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Files copied</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Clipboard not checked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Clipboard cleared</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Idle warning</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screen locked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screen unlocked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wrong unlock attempt</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Print job</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Removable drive connected</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>File written to a removable drive</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screen capture</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Guard service started</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Guard service stopped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Policy applied</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Policy rejected</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>PIN set</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>IT credential checked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Heartbeat</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Events dropped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Event quarantined</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Agent spool events dropped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Keyed hashes computed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Local events throttled</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Damaged journal salvaged</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Approved by a supervisor</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Approved with a one-time code</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Approval refused</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>One-time code used</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Image copied</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Clipboard check failed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Unlocked by a supervisor</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Unlocked with the IT credential</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Unlocked with a recovery code</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screenshot file</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Remote-control or screen-recording program</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screen watermark</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>File holding customer data</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>File sweep finished</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>recorded</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>warned</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>confirmed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>reason given</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>cancelled</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>timed out</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>masked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>blocked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>cleared</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>locked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>unlocked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>allowed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>skipped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>failed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{event}: {outcome}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Findings</name>
    <message>
        <source>Resident ID number</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Bank card number</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Mobile number</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>E-mail address</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Unified social credit code</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Passport number</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Bank account number</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>JustifyDialog</name>
    <message>
        <source>The customer asked for it at the counter</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Required by the business process</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Give the business reason to continue. It is recorded with this event.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>C&amp;ontinue</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Other reason:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Type the reason (at least {n} characters)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{typed} of at least {n} characters</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pick a reason or type your own.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>LockScreen</name>
    <message>
        <source>This PC is locked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Password or PIN</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Unlock</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Supervisor</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>your password or PIN</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>a supervisor&apos;s credential</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>the IT credential</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>a one-time recovery code from IT</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>, </source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Teller Guard locked the screen to protect customer data. It unlocks with: {accepted}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Supervisor&apos;s password</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>IT credential</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Recovery code (12 digits)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Locked at {time}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Try again in {n} s.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{message} {wait}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>PinSetupDialog</name>
    <message>
        <source>The PIN is too short.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The PIN must be digits only.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Teller Guard: set your unlock PIN</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>When Teller Guard locks this PC and the system password cannot be checked, this PIN unlocks it. Choose 6 to 12 digits.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;PIN:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Repeat PIN:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Save PIN</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Later</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The two PINs differ.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Prompt</name>
    <message>
        <source>You copied customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Customer data in the clipboard was replaced by its masked form.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The clipboard was emptied: it held customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The clipboard was emptied to protect customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The clipboard content was too large or not text, so it was not checked.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A screen capture may show customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A new screenshot contains customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A remote-control or screen-recording program was started.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A file on this PC holds customer data: please remove it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This print job contains customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A removable drive was connected. Copying customer data to it is not allowed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A file with customer data was written to a removable drive.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No activity: the screen will lock soon.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Teller Guard is already running.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The clipboard holds customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A print job contains customer data.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Customer data and a removable drive.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Printer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Document</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pages</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Drive</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>File</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Application</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Not checked</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{label}: {value}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Customer data was found.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{name} × {count}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>PromptDialog</name>
    <message>
        <source>Teller Guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Cancels automatically in {n} s.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>QuitDialog</name>
    <message>
        <source>Quit Teller Guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Quitting stops the protection of customer data on this PC. Only IT staff may do it: enter the IT credential.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>IT &amp;credential:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>That is not the IT credential.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SupervisorDialog</name>
    <message>
        <source>Teller Guard: ask your supervisor</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Ask your supervisor to approve</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>It was stopped. A supervisor at the counter can let it go ahead with their own credential; the approval is recorded with both names.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>One-time code from IT (supervisor not here)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Approved by:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Why it may go ahead (optional)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Reason:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A&amp;pprove</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Code:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Credential:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>12 digits from IT</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The supervisor&apos;s password</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Checking…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stays blocked unless approved within {n} s.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Toast</name>
    <message>
        <source>The screen locks in {n} s. Move the mouse or press a key to stay signed in.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message>
        <source>&amp;Lock now</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;About Teller Guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Quit (IT only)…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Protected</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Degraded: some protection is not working</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Alert</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Status: {state}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>running</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>unavailable ({reason})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>unavailable</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{name}: {state}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>none</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Last event: {event}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Events waiting to be sent: {n}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>unknown</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Policy version: {v}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>reachable</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>not reachable</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>not configured</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Collector: {state}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Teller Guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>About Teller Guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Teller Guard {version}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Protects customer data at the counter: it checks what you copy, warns before risky actions and locks the PC when you step away. Questions: ask your branch IT staff.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Unlock</name>
    <message>
        <source>Unlocked.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wrong password or PIN.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Too many wrong tries.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The screen is not locked.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No PIN is set; ask IT to unlock this PC.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This kind of credential is not accepted here.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No supervisor has this ID.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A teller cannot approve their own action.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The code is wrong, expired, already used or not for this PC.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;My password or PIN</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Supervisor&apos;s credential</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;IT credential</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>One-time recovery &amp;code from IT</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Watchers</name>
    <message>
        <source>Clipboard guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Idle lock</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Screen capture guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Print guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Removable drive guard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Lock hotkey</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Event upload</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
