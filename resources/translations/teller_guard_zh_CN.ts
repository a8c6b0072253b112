<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>Channels</name>
    <message>
        <source>Clipboard</source>
        <translation>剪贴板</translation>
    </message>
    <message>
        <source>Screen capture</source>
        <translation>截屏</translation>
    </message>
    <message>
        <source>Printing</source>
        <translation>打印</translation>
    </message>
    <message>
        <source>Removable drive</source>
        <translation>移动存储</translation>
    </message>
    <message>
        <source>Idle lock</source>
        <translation>离开锁屏</translation>
    </message>
    <message>
        <source>Files</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>System</source>
        <translation>系统</translation>
    </message>
</context>
<context>
    <name>ConfirmDialog</name>
    <message>
        <source>Continue only if the customer&apos;s data is needed for this task. Confirm to continue, or cancel.</source>
        <translation>仅当本次业务确实需要该客户信息时才继续。请确认继续，或取消。</translation>
    </message>
    <message>
        <source>C&amp;onfirm</source>
        <translation>确认(&amp;O)</translation>
    </message>
</context>
<context>
    <name>Events</name>
    <message>
        <source>Guard started</source>
        <translation>卫士已启动</translation>
    </message>
    <message>
        <source>Guard stopped</source>
        <translation>卫士已停止</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Files copied</source>
        <translation>复制文件</translation>
    </message>
    <message>
        <source>Clipboard not checked</source>
        <translation>剪贴板未检查</translation>
    </message>
    <message>
        <source>Clipboard cleared</source>
        <translation>剪贴板已清空</translation>
    </message>
    <message>
        <source>Idle warning</source>
        <translation>离开提醒</translation>
    </message>
    <message>
        <source>Screen locked</source>
        <translation>锁屏</translation>
    </message>
    <message>
        <source>Screen unlocked</source>
        <translation>解锁</translation>
    </message>
    <message>
        <source>Wrong unlock attempt</source>
        <translation>解锁失败</translation>
    </message>
    <message>
        <source>Print job</source>
        <translation>打印任务</translation>
    </message>
    <message>
        <source>Removable drive connected</source>
        <translation>接入移动存储</translation>
    </message>
    <message>
        <source>File written to a removable drive</source>
        <translation>写入移动存储</translation>
    </message>
    <message>
        <source>Screen capture</source>
        <translation>截屏</translation>
    </message>
    <message>
        <source>Guard service started</source>
        <translation>后台服务已启动</translation>
    </message>
    <message>
        <source>Guard service stopped</source>
        <translation>后台服务已停止</translation>
    </message>
    <message>
        <source>Policy applied</source>
        <translation>策略已生效</translation>
    </message>
    <message>
        <source>Policy rejected</source>
        <translation>策略被拒绝</translation>
    </message>
    <message>
        <source>PIN set</source>
        <translation>设置 PIN 码</translation>
    </message>
    <message>
        <source>IT credential checked</source>
        <translation>校验 IT 凭据</translation>
    </message>
    <message>
        <source>Heartbeat</source>
        <translation>心跳</translation>
    </message>
    <message>
        <source>Events dropped</source>
        <translation>事件已丢弃</translation>
    </message>
    <message>
        <source>Event quarantined</source>
        <translation>事件被隔离</translation>
    </message>
    <message>
        <source>Agent spool events dropped</source>
        <translation>柜员端缓存事件已丢弃</translation>
    </message>
    <message>
        <source>Keyed hashes computed</source>
        <translation>服务计算了哈希</translation>
    </message>
    <message>
        <source>Local events throttled</source>
        <translation>本地事件被限流</translation>
    </message>
    <message>
        <source>Damaged journal salvaged</source>
        <translation>日志损坏已抢救</translation>
    </message>
    <message>
        <source>Approved by a supervisor</source>
        <translation>授权人员授权</translation>
    </message>
    <message>
        <source>Approved with a one-time code</source>
        <translation>一次性授权码授权</translation>
    </message>
    <message>
        <source>Approval refused</source>
        <translation>授权未通过</translation>
    </message>
    <message>
        <source>One-time code used</source>
        <translation>一次性授权码已使用</translation>
    </message>
    <message>
        <source>Image copied</source>
        <translation>复制图片</translation>
    </message>
    <message>
        <source>Clipboard check failed</source>
        <translation>剪贴板检查出错</translation>
    </message>
    <message>
        <source>Unlocked by a supervisor</source>
        <translation>授权人员解锁</translation>
    </message>
    <message>
        <source>Unlocked with the IT credential</source>
        <translation>IT 人员解锁</translation>
    </message>
    <message>
        <source>Unlocked with a recovery code</source>
        <translation>恢复码解锁</translation>
    </message>
    <message>
        <source>Screenshot file</source>
        <translation>截图文件</translation>
    </message>
    <message>
        <source>Remote-control or screen-recording program</source>
        <translation>远程控制/录屏程序</translation>
    </message>
    <message>
        <source>Screen watermark</source>
        <translation>屏幕水印</translation>
    </message>
    <message>
        <source>File holding customer data</source>
        <translation>留存客户资料文件</translation>
    </message>
    <message>
        <source>File sweep finished</source>
        <translation>文件检查完成</translation>
    </message>
    <message>
        <source>recorded</source>
        <translation>已记录</translation>
    </message>
    <message>
        <source>warned</source>
        <translation>已提醒</translation>
    </message>
    <message>
        <source>confirmed</source>
        <translation>已确认</translation>
    </message>
    <message>
        <source>reason given</source>
        <translation>已说明原因</translation>
    </message>
    <message>
        <source>cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <source>timed out</source>
        <translation>已超时</translation>
    </message>
    <message>
        <source>masked</source>
        <translation>已脱敏</translation>
    </message>
    <message>
        <source>blocked</source>
        <translation>已拦截</translation>
    </message>
    <message>
        <source>cleared</source>
        <translation>已清空</translation>
    </message>
    <message>
        <source>locked</source>
        <translation>已锁定</translation>
    </message>
    <message>
        <source>unlocked</source>
        <translation>已解锁</translation>
    </message>
    <message>
        <source>allowed</source>
        <translation>已允许</translation>
    </message>
    <message>
        <source>skipped</source>
        <translation>已跳过</translation>
    </message>
    <message>
        <source>failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>{event}: {outcome}</source>
        <translation>{event}：{outcome}</translation>
    </message>
</context>
<context>
    <name>Findings</name>
    <message>
        <source>Resident ID number</source>
        <translation>身份证号</translation>
    </message>
    <message>
        <source>Bank card number</source>
        <translation>银行卡号</translation>
    </message>
    <message>
        <source>Mobile number</source>
        <translation>手机号</translation>
    </message>
    <message>
        <source>E-mail address</source>
        <translation>电子邮箱</translation>
    </message>
    <message>
        <source>Unified social credit code</source>
        <translation>统一社会信用代码</translation>
    </message>
    <message>
        <source>Passport number</source>
        <translation>护照号</translation>
    </message>
    <message>
        <source>Bank account number</source>
        <translation>银行账号</translation>
    </message>
</context>
<context>
    <name>JustifyDialog</name>
    <message>
        <source>The customer asked for it at the counter</source>
        <translation>客户在柜台当面要求</translation>
    </message>
    <message>
        <source>Required by the business process</source>
        <translation>业务流程需要</translation>
    </message>
    <message>
        <source>Give the business reason to continue. It is recorded with this event.</source>
        <translation>请填写继续操作的业务原因，原因将随本事件一并记录。</translation>
    </message>
    <message>
        <source>C&amp;ontinue</source>
        <translation>继续(&amp;O)</translation>
    </message>
    <message>
        <source>&amp;Other reason:</source>
        <translation>其他原因(&amp;T)：</translation>
    </message>
    <message>
        <source>Type the reason (at least {n} characters)</source>
        <translation>输入原因（至少 {n} 个字）</translation>
    </message>
    <message>
        <source>{typed} of at least {n} characters</source>
        <translation>已输入 {typed} 个字，至少 {n} 个</translation>
    </message>
    <message>
        <source>Pick a reason or type your own.</source>
        <translation>请选择一个原因，或自行填写。</translation>
    </message>
</context>
<context>
    <name>LockScreen</name>
    <message>
        <source>This PC is locked</source>
        <translation>本机已锁定</translation>
    </message>
    <message>
        <source>Password or PIN</source>
        <translation>密码或 PIN 码</translation>
    </message>
    <message>
        <source>&amp;Unlock</source>
        <translation>解锁(&amp;U)</translation>
    </message>
    <message>
        <source>Supervisor</source>
        <translation>授权人员</translation>
    </message>
    <message>
        <source>your password or PIN</source>
        <translation>您的密码或 PIN 码</translation>
    </message>
    <message>
        <source>a supervisor&apos;s credential</source>
        <translation>授权人员凭据</translation>
    </message>
    <message>
        <source>the IT credential</source>
        <translation>IT 凭据</translation>
    </message>
    <message>
        <source>a one-time recovery code from IT</source>
        <translation>IT 提供的一次性恢复码</translation>
    </message>
    <message>
        <source>, </source>
        <translation>、</translation>
    </message>
    <message>
        <source>Teller Guard locked the screen to protect customer data. It unlocks with: {accepted}.</source>
        <translation>为保护客户信息，柜面隐私卫士已锁定屏幕。可用以下方式解锁：{accepted}。</translation>
    </message>
    <message>
        <source>Supervisor&apos;s password</source>
        <translation>授权人员密码</translation>
    </message>
    <message>
        <source>IT credential</source>
        <translation>IT 凭据</translation>
    </message>
    <message>
        <source>Recovery code (12 digits)</source>
        <translation>恢复码（12 位数字）</translation>
    </message>
    <message>
        <source>Locked at {time}</source>
        <translation>锁定于 {time}</translation>
    </message>
    <message>
        <source>Try again in {n} s.</source>
        <translation>请 {n} 秒后重试。</translation>
    </message>
    <message>
        <source>{message} {wait}</source>
        <translation>{message}{wait}</translation>
    </message>
</context>
<context>
    <name>PinSetupDialog</name>
    <message>
        <source>The PIN is too short.</source>
        <translation>PIN 码太短。</translation>
    </message>
    <message>
        <source>The PIN must be digits only.</source>
        <translation>PIN 码只能是数字。</translation>
    </message>
    <message>
        <source>Teller Guard: set your unlock PIN</source>
        <translation>柜面隐私卫士：设置解锁 PIN 码</translation>
    </message>
    <message>
        <source>When Teller Guard locks this PC and the system password cannot be checked, this PIN unlocks it. Choose 6 to 12 digits.</source>
        <translation>当柜面隐私卫士锁定本机且无法校验系统密码时，用此 PIN 码解锁。请设置 6 到 12 位数字。</translation>
    </message>
    <message>
        <source>&amp;PIN:</source>
        <translation>PIN 码(&amp;P)：</translation>
    </message>
    <message>
        <source>&amp;Repeat PIN:</source>
        <translation>再次输入(&amp;R)：</translation>
    </message>
    <message>
        <source>&amp;Save PIN</source>
        <translation>保存 PIN 码(&amp;S)</translation>
    </message>
    <message>
        <source>&amp;Later</source>
        <translation>稍后(&amp;L)</translation>
    </message>
    <message>
        <source>The two PINs differ.</source>
        <translation>两次输入的 PIN 码不一致。</translation>
    </message>
</context>
<context>
    <name>Prompt</name>
    <message>
        <source>You copied customer data.</source>
        <translation>您复制的内容包含客户信息。</translation>
    </message>
    <message>
        <source>Customer data in the clipboard was replaced by its masked form.</source>
        <translation>剪贴板中的客户信息已替换为脱敏内容。</translation>
    </message>
    <message>
        <source>The clipboard was emptied: it held customer data.</source>
        <translation>剪贴板含有客户信息，已被清空。</translation>
    </message>
    <message>
        <source>The clipboard was emptied to protect customer data.</source>
        <translation>为保护客户信息，剪贴板已被清空。</translation>
    </message>
    <message>
        <source>The clipboard content was too large or not text, so it was not checked.</source>
        <translation>剪贴板内容过大或不是文本，未做检查。</translation>
    </message>
    <message>
        <source>A screen capture may show customer data.</source>
        <translation>截屏可能包含客户信息。</translation>
    </message>
    <message>
        <source>A new screenshot contains customer data.</source>
        <translation>新的截图包含客户信息。</translation>
    </message>
    <message>
        <source>A remote-control or screen-recording program was started.</source>
        <translation>检测到远程控制或录屏程序已启动。</translation>
    </message>
    <message>
        <source>A file on this PC holds customer data: please remove it.</source>
        <translation>本机文件中留存了客户资料，请删除。</translation>
    </message>
    <message>
        <source>This print job contains customer data.</source>
        <translation>此打印任务包含客户信息。</translation>
    </message>
    <message>
        <source>A removable drive was connected. Copying customer data to it is not allowed.</source>
        <translation>检测到接入了移动存储设备。禁止将客户信息拷贝到移动存储设备。</translation>
    </message>
    <message>
        <source>A file with customer data was written to a removable drive.</source>
        <translation>含客户信息的文件被写入了移动存储设备。</translation>
    </message>
    <message>
        <source>No activity: the screen will lock soon.</source>
        <translation>长时间无操作，屏幕即将锁定。</translation>
    </message>
    <message>
        <source>Teller Guard is already running.</source>
        <translation>柜面隐私卫士已在运行。</translation>
    </message>
    <message>
        <source>The clipboard holds customer data.</source>
        <translation>剪贴板中有客户信息。</translation>
    </message>
    <message>
        <source>A print job contains customer data.</source>
        <translation>打印任务包含客户信息。</translation>
    </message>
    <message>
        <source>Customer data and a removable drive.</source>
        <translation>客户信息与移动存储设备。</translation>
    </message>
    <message>
        <source>Printer</source>
        <translation>打印机</translation>
    </message>
    <message>
        <source>Document</source>
        <translation>文档</translation>
    </message>
    <message>
        <source>Pages</source>
        <translation>页数</translation>
    </message>
    <message>
        <source>Drive</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>Application</source>
        <translation>应用程序</translation>
    </message>
    <message>
        <source>Not checked</source>
        <translation>未检查</translation>
    </message>
    <message>
        <source>{label}: {value}</source>
        <translation>{label}：{value}</translation>
    </message>
    <message>
        <source>Customer data was found.</source>
        <translation>发现客户信息。</translation>
    </message>
    <message>
        <source>{name} × {count}</source>
        <translation>{name} × {count}</translation>
    </message>
</context>
<context>
    <name>PromptDialog</name>
    <message>
        <source>Teller Guard</source>
        <translation>柜面隐私卫士</translation>
    </message>
    <message>
        <source>&amp;Cancel</source>
        <translation>取消(&amp;C)</translation>
    </message>
    <message>
        <source>Cancels automatically in {n} s.</source>
        <translation>{n} 秒后自动取消。</translation>
    </message>
</context>
<context>
    <name>QuitDialog</name>
    <message>
        <source>Quit Teller Guard</source>
        <translation>退出柜面隐私卫士</translation>
    </message>
    <message>
        <source>Quitting stops the protection of customer data on this PC. Only IT staff may do it: enter the IT credential.</source>
        <translation>退出将停止本机的客户信息保护，仅限 IT 人员操作：请输入 IT 凭据。</translation>
    </message>
    <message>
        <source>IT &amp;credential:</source>
        <translation>IT 凭据(&amp;I)：</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Cancel</source>
        <translation>取消(&amp;C)</translation>
    </message>
    <message>
        <source>That is not the IT credential.</source>
        <translation>IT 凭据不正确。</translation>
    </message>
</context>
<context>
    <name>SupervisorDialog</name>
    <message>
        <source>Teller Guard: ask your supervisor</source>
        <translation>柜面隐私卫士：请授权人员授权</translation>
    </message>
    <message>
        <source>Ask your supervisor to approve</source>
        <translation>请授权人员授权</translation>
    </message>
    <message>
        <source>It was stopped. A supervisor at the counter can let it go ahead with their own credential; the approval is recorded with both names.</source>
        <translation>该操作已被拦截。授权人员可在柜台用本人凭据授权放行；授权记录同时登记柜员和授权人员。</translation>
    </message>
    <message>
        <source>One-time code from IT (supervisor not here)</source>
        <translation>IT 提供的一次性授权码（授权人员不在场）</translation>
    </message>
    <message>
        <source>&amp;Approved by:</source>
        <translation>授权人(&amp;A)：</translation>
    </message>
    <message>
        <source>Why it may go ahead (optional)</source>
        <translation>放行理由（可选）</translation>
    </message>
    <message>
        <source>&amp;Reason:</source>
        <translation>理由(&amp;R)：</translation>
    </message>
    <message>
        <source>A&amp;pprove</source>
        <translation>授权(&amp;P)</translation>
    </message>
    <message>
        <source>&amp;Cancel</source>
        <translation>取消(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Code:</source>
        <translation>授权码(&amp;C)：</translation>
    </message>
    <message>
        <source>&amp;Credential:</source>
        <translation>凭据(&amp;C)：</translation>
    </message>
    <message>
        <source>12 digits from IT</source>
        <translation>IT 提供的 12 位数字</translation>
    </message>
    <message>
        <source>The supervisor&apos;s password</source>
        <translation>授权人员的密码</translation>
    </message>
    <message>
        <source>Checking…</source>
        <translation>正在校验…</translation>
    </message>
    <message>
        <source>Stays blocked unless approved within {n} s.</source>
        <translation>{n} 秒内未授权则保持拦截。</translation>
    </message>
</context>
<context>
    <name>Toast</name>
    <message>
        <source>The screen locks in {n} s. Move the mouse or press a key to stay signed in.</source>
        <translation>{n} 秒后锁屏。移动鼠标或按任意键可保持登录。</translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message>
        <source>&amp;Lock now</source>
        <translation>立即锁屏(&amp;L)</translation>
    </message>
    <message>
        <source>&amp;About Teller Guard</source>
        <translation>关于柜面隐私卫士(&amp;A)</translation>
    </message>
    <message>
        <source>&amp;Quit (IT only)…</source>
        <translation>退出（仅限 IT）(&amp;Q)…</translation>
    </message>
    <message>
        <source>Protected</source>
        <translation>保护中</translation>
    </message>
    <message>
        <source>Degraded: some protection is not working</source>
        <translation>部分降级：有保护功能未在工作</translation>
    </message>
    <message>
        <source>Alert</source>
        <translation>警报</translation>
    </message>
    <message>
        <source>Status: {state}</source>
        <translation>状态：{state}</translation>
    </message>
    <message>
        <source>running</source>
        <translation>运行中</translation>
    </message>
    <message>
        <source>unavailable ({reason})</source>
        <translation>不可用（{reason}）</translation>
    </message>
    <message>
        <source>unavailable</source>
        <translation>不可用</translation>
    </message>
    <message>
        <source>{name}: {state}</source>
        <translation>{name}：{state}</translation>
    </message>
    <message>
        <source>none</source>
        <translation>无</translation>
    </message>
    <message>
        <source>Last event: {event}</source>
        <translation>最近事件：{event}</translation>
    </message>
    <message>
        <source>Events waiting to be sent: {n}</source>
        <translation>待上报事件：{n}</translation>
    </message>
    <message>
        <source>unknown</source>
        <translation>未知</translation>
    </message>
    <message>
        <source>Policy version: {v}</source>
        <translation>策略版本：{v}</translation>
    </message>
    <message>
        <source>reachable</source>
        <translation>可连接</translation>
    </message>
    <message>
        <source>not reachable</source>
        <translation>无法连接</translation>
    </message>
    <message>
        <source>not configured</source>
        <translation>未配置</translation>
    </message>
    <message>
        <source>Collector: {state}</source>
        <translation>事件服务器：{state}</translation>
    </message>
    <message>
        <source>Teller Guard</source>
        <translation>柜面隐私卫士</translation>
    </message>
    <message>
        <source>About Teller Guard</source>
        <translation>关于柜面隐私卫士</translation>
    </message>
    <message>
        <source>Teller Guard {version}</source>
        <translation>柜面隐私卫士 {version}</translation>
    </message>
    <message>
        <source>Protects customer data at the counter: it checks what you copy, warns before risky actions and locks the PC when you step away. Questions: ask your branch IT staff.</source>
        <translation>在柜面保护客户信息：检查您复制的内容，在有风险的操作前提醒，并在您离开时锁定电脑。如有疑问，请联系网点 IT 人员。</translation>
    </message>
</context>
<context>
    <name>Unlock</name>
    <message>
        <source>Unlocked.</source>
        <translation>已解锁。</translation>
    </message>
    <message>
        <source>Wrong password or PIN.</source>
        <translation>密码或 PIN 码错误。</translation>
    </message>
    <message>
        <source>Too many wrong tries.</source>
        <translation>错误次数过多。</translation>
    </message>
    <message>
        <source>The screen is not locked.</source>
        <translation>屏幕未锁定。</translation>
    </message>
    <message>
        <source>No PIN is set; ask IT to unlock this PC.</source>
        <translation>尚未设置 PIN 码，请联系 IT 解锁本机。</translation>
    </message>
    <message>
        <source>This kind of credential is not accepted here.</source>
        <translation>此处不接受这种凭据。</translation>
    </message>
    <message>
        <source>No supervisor has this ID.</source>
        <translation>没有此编号的授权人员。</translation>
    </message>
    <message>
        <source>A teller cannot approve their own action.</source>
        <translation>柜员不能为自己的操作授权。</translation>
    </message>
    <message>
        <source>The code is wrong, expired, already used or not for this PC.</source>
        <translation>授权码错误、已过期、已使用或不属于本机。</translation>
    </message>
    <message>
        <source>&amp;My password or PIN</source>
        <translation>我的密码或 PIN 码(&amp;M)</translation>
    </message>
    <message>
        <source>&amp;Supervisor&apos;s credential</source>
        <translation>授权人员凭据(&amp;S)</translation>
    </message>
    <message>
        <source>&amp;IT credential</source>
        <translation>IT 凭据(&amp;I)</translation>
    </message>
    <message>
        <source>One-time recovery &amp;code from IT</source>
        <translation>IT 提供的一次性恢复码(&amp;C)</translation>
    </message>
</context>
<context>
    <name>Watchers</name>
    <message>
        <source>Clipboard guard</source>
        <translation>剪贴板防护</translation>
    </message>
    <message>
        <source>Idle lock</source>
        <translation>离开锁屏</translation>
    </message>
    <message>
        <source>Screen capture guard</source>
        <translation>截屏防护</translation>
    </message>
    <message>
        <source>Print guard</source>
        <translation>打印防护</translation>
    </message>
    <message>
        <source>Removable drive guard</source>
        <translation>移动存储防护</translation>
    </message>
    <message>
        <source>Lock hotkey</source>
        <translation>锁屏快捷键</translation>
    </message>
    <message>
        <source>Event upload</source>
        <translation>事件上报</translation>
    </message>
</context>
</TS>
