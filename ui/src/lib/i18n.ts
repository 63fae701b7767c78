// The UI's two languages. Both dictionaries have the type `Messages`, so a key
// missing from either (or an error code Rust adds to `ErrorCode` without a
// translation here) fails `svelte-check` and therefore `npm run build`.

import type {
  Activity,
  AppointmentStatus,
  ConnectionFailureDto,
  ErrorCode,
  PainBand,
  PainScale,
  PulledStreamDto,
  Reassessment,
  ReportStateDto,
  SettingsSourceDto,
  Sex,
  SyncProblemKindDto,
} from './bindings';
import type { UiErrorCode } from './api';

export type Lang = 'zh-CN' | 'en';
export const LANGS: readonly Lang[] = ['zh-CN', 'en'];

export interface Messages {
  /** Name of this language in itself, shown on the toggle that switches to it. */
  langName: string;
  /** Accessible label of the toggle that switches *to* this language. */
  switchToThis: string;

  appName: string;
  nav: { label: string; patients: string; schedule: string; reassess: string };
  clinicUnnamed: string;
  clinicDate: string;
  timeZone: string;
  loading: string;
  errorDetail: string;
  retry: string;

  patients: {
    searchLabel: string;
    searchPlaceholder: string;
    searchHint: string;
    resultsLabel: string;
    resultCount: (n: number) => string;
    truncated: (n: number) => string;
    noResults: (query: string) => string;
    startTyping: string;
    detailHeading: string;
    noneSelected: string;
    id: string;
    sex: string;
    birthDate: string;
    age: string;
    insurance: string;
    phone: string;
    noPhone: string;
    phoneTailLabel: string;
    pinyinMatch: string;
  };

  schedule: {
    heading: string;
    prevDay: string;
    today: string;
    nextDay: string;
    dateLabel: string;
    doctorLabel: string;
    allDoctors: string;
    isToday: string;
    total: (n: number) => string;
    empty: string;
    emptyForDoctor: (doctor: string) => string;
    colTime: string;
    colPatient: string;
    colPatientId: string;
    colAge: string;
    colInsurance: string;
    colStatus: string;
    openPatient: (name: string) => string;
    departmentLabel: string;
    allDepartments: string;
    statusFilterLabel: string;
    emptyFiltered: string;
    print: string;
    printTitle: (clinic: string, day: string) => string;
    perDoctorLabel: string;
    onlyDoctor: (doctor: string) => string;
    boardKeys: string;
    changedMark: string;
    changedCount: (n: number) => string;
    freshLocal: string;
    freshPending: string;
    freshOffline: (at: string) => string;
    freshStale: (at: string) => string;
    freshAt: (at: string) => string;
  };

  /** `sun` .. `sat`, index = `Date#getUTCDay()`. */
  weekdays: readonly [string, string, string, string, string, string, string];
  sex: Record<Sex, string>;
  /** Age in whole years, short form for lists. */
  age: (years: number) => string;
  insured: string;
  selfPay: string;
  status: Record<AppointmentStatus, string>;
  errors: Record<ErrorCode | UiErrorCode, string>;

  sync: {
    label: string;
    notConfigured: string;
    online: string;
    offline: string;
    unknown: string;
    syncing: string;
    waiting: (n: number) => string;
    rejected: (n: number) => string;
    lastSuccess: (time: string) => string;
    neverSynced: string;
    syncNow: string;
    problem: Record<SyncProblemKindDto, string>;
    /** The server takes reports but sends no patients or schedules (the hospital's original API). */
    uploadOnly: string;
    /** Pulled records this device refused, listed on the diagnostics screen. */
    setAside: (n: number) => string;
  };

  reports: {
    heading: string;
    none: string;
    record: string;
    newHeading: string;
    scaleLabel: string;
    scale: Record<PainScale, string>;
    scaleShort: Record<PainScale, string>;
    band: Record<PainBand, string>;
    /** Wong-Baker wording for 0, 2, 4, 6, 8, 10. */
    faces: readonly [string, string, string, string, string, string];
    scoreLabel: string;
    pickScore: string;
    when: string;
    now: string;
    earlier: string;
    backdateHint: (minutes: number) => string;
    details: string;
    bodySite: string;
    activity: string;
    activityAny: string;
    activityValue: Record<Activity, string>;
    note: string;
    intervention: string;
    interventionHint: (minutes: number) => string;
    followsUp: (time: string, intervention: string) => string;
    isReassessment: string;
    notReassessment: string;
    recordedBy: (name: string) => string;
    retry: string;
    correct: string;
    correctHeading: string;
    correctionReason: string;
    correctSave: string;
    cancel: string;
    corrects: (reason: string) => string;
    supersededBy: string;
    state: Record<ReportStateDto, string>;
    reassessment: Record<Reassessment, string>;
    dueAt: (time: string) => string;
    history: string;
    historyAction: (action: string, detail: string | null) => string;
    chartLabel: (n: number) => string;
    chartHeading: string;
    listHeading: string;
    scaleChange: (scale: string) => string;
    exportFhir: string;
    exported: (path: string, n: number) => string;
    signInToRecord: string;
  };

  session: {
    signIn: string;
    signOut: string;
    signedInAs: (name: string) => string;
    locked: (name: string) => string;
    dialogTitle: string;
    unlockTitle: (name: string) => string;
    staffLabel: string;
    pickStaff: string;
    pinLabel: string;
    submit: string;
    unlock: string;
    switchUser: string;
    cancel: string;
    roles: Record<string, string>;
    noPin: string;
  };

  reassess: {
    heading: string;
    intro: (minutes: number) => string;
    none: string;
    overdue: (n: number) => string;
    patient: string;
    assessed: string;
    intervention: string;
    due: string;
    open: string;
    exportAll: string;
  };

  // ---- Installation: diagnostics and first-run provisioning (issue #8) ----
  install: {
    nav: string;
    notProvisioned: string;
    notProvisionedShort: string;
    heading: string;
    version: string;
    dataDir: string;
    database: string;
    databaseSize: (kib: number, schema: number) => string;
    logDir: string;
    clinic: string;
    server: string;
    source: Record<SettingsSourceDto, string>;
    sync: string;
    lastSync: string;
    lastError: string;
    none: string;
    problems: string;
    setAsideHeading: string;
    setAsideHint: string;
    setAsideStream: Record<PulledStreamDto, string>;
    setAsideColumns: { stream: string; id: string; reason: string; at: string };
    testConnection: string;
    testing: string;
    connectionOk: string;
    failure: Record<ConnectionFailureDto, string>;
    exportBundle: string;
    bundleWritten: (path: string) => string;
    provisionHeading: string;
    provisionHint: string;
    provisionCode: string;
    provisionButton: string;
    provisioned: (clinic: string) => string;
    restartNeeded: string;
  };
}

const zhCN: Messages = {
  langName: '中文',
  switchToThis: '切换到中文',

  appName: '诊所工作台',
  nav: { label: '主导航', patients: '患者', schedule: '排班预约', reassess: '待复评' },
  clinicUnnamed: '未命名诊所',
  clinicDate: '诊所日期',
  timeZone: '时区',
  loading: '加载中…',
  errorDetail: '详情',
  retry: '重试',

  patients: {
    searchLabel: '查找患者',
    searchPlaceholder: '输入姓名或患者编号，或扫描腕带',
    searchHint: '↑↓ 选择，回车打开',
    resultsLabel: '搜索结果',
    resultCount: (n) => `共 ${n} 位患者`,
    truncated: (n) => `仅显示前 ${n} 条结果，请输入更精确的条件`,
    noResults: (q) => `没有找到与“${q}”匹配的患者`,
    startTyping: '输入姓名或编号开始查找',
    detailHeading: '患者信息',
    noneSelected: '请从左侧列表选择患者',
    id: '编号',
    sex: '性别',
    birthDate: '出生日期',
    age: '年龄',
    insurance: '医保',
    phone: '电话',
    noPhone: '未登记',
    phoneTailLabel: '尾号 ',
    pinyinMatch: '拼音',
  },

  schedule: {
    heading: '预约',
    prevDay: '前一天',
    today: '今天',
    nextDay: '后一天',
    dateLabel: '日期',
    doctorLabel: '医生',
    allDoctors: '全部医生',
    isToday: '今天',
    total: (n) => `共 ${n} 个预约`,
    empty: '当天没有预约',
    emptyForDoctor: (d) => `${d} 当天没有预约`,
    departmentLabel: '科室',
    allDepartments: '全部科室',
    statusFilterLabel: '按状态筛选（点击切换）',
    emptyFiltered: '没有符合筛选条件的预约',
    print: '打印',
    printTitle: (clinic, day) => `${clinic} · ${day} 预约表`,
    perDoctorLabel: '各医生当天预约',
    onlyDoctor: (d) => `只看 ${d}`,
    boardKeys: '方向键在预约间移动，回车打开患者',
    changedMark: '刚更新',
    changedCount: (n) => `${n} 条刚更新`,
    freshLocal: '未连接服务器：显示本机保存的排班',
    freshPending: '尚未从服务器更新',
    freshOffline: (at) => `离线：显示 ${at} 从服务器获取的排班，可能不是最新`,
    freshStale: (at) => `排班可能已过时：最后一次从服务器更新是 ${at}`,
    freshAt: (at) => `已于 ${at} 从服务器更新`,
    colTime: '时间',
    colPatient: '患者',
    colPatientId: '编号',
    colAge: '年龄',
    colInsurance: '医保',
    colStatus: '状态',
    openPatient: (name) => `打开患者 ${name}`,
  },

  weekdays: ['星期日', '星期一', '星期二', '星期三', '星期四', '星期五', '星期六'],
  sex: { female: '女', male: '男', unknown: '未知' },
  age: (y) => `${y}岁`,
  insured: '医保',
  selfPay: '自费',
  status: {
    booked: '已预约',
    checked_in: '已签到',
    completed: '已完成',
    cancelled: '已取消',
    no_show: '未到诊',
  },
  errors: {
    query_too_long: '搜索内容太长，请缩短后再试',
    invalid_patient_id: '患者编号格式不正确',
    invalid_doctor_id: '医生编号格式不正确',
    invalid_date: '日期无效，请使用 年-月-日 格式',
    patient_not_found: '找不到该患者',
    database_too_new: '数据库版本比本程序新，请升级诊所工作台',
    storage_failed: '读取本地数据失败，请重试；如仍失败请联系管理员',
    internal: '程序内部错误，请重试；如仍失败请联系管理员',
    backend_unavailable: '无法连接到本地服务，请在诊所工作台应用中打开',
    invalid_score: '评分不在该量表范围内',
    invalid_scale: '未知的疼痛量表',
    invalid_assessment_time: '评估时间格式无效',
    assessment_in_future: '评估时间不能晚于现在，未保存',
    assessment_too_old: '评估时间早于允许补录的时限，未保存',
    invalid_assessment_details: '部位、备注或处理措施过长或含有无效字符',
    invalid_follow_up: '复评必须对应同一患者的一次有处理措施的评估，且时间在其之后',
    report_already_corrected: '该记录已被更正，请更正最新的一条',
    not_signed_in: '请先登录（选择姓名并输入 PIN）',
    session_locked: '长时间未操作，已锁定，请输入 PIN 解锁',
    unknown_staff: '找不到该工作人员',
    pin_not_set: '该工作人员尚未设置 PIN，请联系管理员',
    wrong_pin: 'PIN 不正确',
    pin_attempts_exceeded: 'PIN 错误次数过多，请稍候一分钟再试',
    export_failed: '导出文件写入失败',
    report_not_found: '找不到该评估记录',
    report_not_rejected: '只有被退回的记录可以重新提交或更正',
    invalid_correction_reason: '请填写更正原因',
    sync_not_configured: '未配置中心服务器，无法同步',
    // installation (issue #8)
    invalid_profile: '诊所配置或注册码无效，请检查后重试',
    other_clinic_data: '本机保存着其他诊所的数据，不能注册到本诊所；请联系管理员',
    support_bundle_failed: '无法写出支持信息包',
  },

  sync: {
    label: '同步状态',
    notConfigured: '未连接中心服务器，评估保存在本机',
    online: '在线',
    offline: '离线',
    unknown: '尚未连接',
    syncing: '正在同步…',
    waiting: (n) => `待上传 ${n} 条`,
    rejected: (n) => `被退回 ${n} 条`,
    lastSuccess: (t) => `上次同步 ${t}`,
    neverSynced: '尚未同步成功',
    syncNow: '立即同步',
    problem: {
      offline: '无法连接中心服务器，数据已保存在本机，恢复连接后自动上传',
      timeout: '中心服务器响应超时，将自动重试',
      server_error: '中心服务器暂时出错，将自动重试',
      credentials_refused: '中心服务器拒绝了本诊所的凭证，同步已停止，请联系管理员',
      protocol: '与中心服务器的通信中断，将自动重试',
      local_storage: '本机数据库出错，请联系管理员',
      unexpected_answer: '服务器的应答不像诊所中心服务器（可能是代理或登录页面？）：评估仍保存在本机，将自动重试，请检查网络或服务器地址',
      feeds_missing: '该服务器不提供患者和排班数据，且尚未确认收到任何评估：请检查服务器地址',
    },
    uploadOnly: '仅上传：该服务器不下发患者和排班数据',
    setAside: (n) => `${n} 条下发记录本机无法保存，已搁置（见诊断）`,
  },

  reports: {
    heading: '疼痛评估',
    none: '暂无评估记录',
    record: '保存评估',
    newHeading: '新评估',
    scaleLabel: '量表',
    scale: { nrs: '数字评分 NRS (0–10)', wong_baker_faces: '面部表情 Wong-Baker' },
    scaleShort: { nrs: 'NRS', wong_baker_faces: 'FACES' },
    band: { none: '无痛', mild: '轻度', moderate: '中度', severe: '重度' },
    faces: ['不痛', '有一点痛', '稍微更痛', '更痛', '很痛', '最痛'],
    scoreLabel: '评分',
    pickScore: '请先选择评分',
    when: '评估时间',
    now: '现在',
    earlier: '补录较早时间',
    backdateHint: (m) => `按诊所时间，最早可补录 ${Math.round(m / 60)} 小时前`,
    details: '更多（可选）：部位、静息/活动、备注、处理措施',
    bodySite: '疼痛部位',
    activity: '状态',
    activityAny: '未注明',
    activityValue: { rest: '静息时', movement: '活动时' },
    note: '备注',
    intervention: '处理措施（如用药）',
    interventionHint: (m) => `填写处理措施后，${m} 分钟后需要复评`,
    followsUp: (time, what) => `这是 ${time}「${what}」后的复评`,
    isReassessment: '复评',
    notReassessment: '不是复评',
    recordedBy: (name) => `记录人：${name}`,
    retry: '原样重新提交',
    correct: '更正',
    correctHeading: '更正这条记录',
    correctionReason: '更正原因（必填）',
    correctSave: '保存更正',
    cancel: '取消',
    corrects: (reason) => `更正记录，原因：${reason}`,
    supersededBy: '已被更正',
    state: { queued: '待上传', sending: '上传中', delivered: '已上传', rejected: '被退回', superseded: '已被更正' },
    reassessment: { not_needed: '', done: '已复评', due: '待复评', overdue: '复评已超时' },
    dueAt: (t) => `复评时间 ${t}`,
    history: '记录轨迹',
    historyAction: (action, detail) =>
      ({
        created: '创建',
        corrected: '作为更正创建',
        superseded: '被更正',
        sync_state: '同步状态变化',
        retried: '重新提交',
        exported: '导出',
      })[action] ?? action + (detail ? ` ${detail}` : ''),
    chartLabel: (n) => `疼痛评分趋势图，共 ${n} 次评估`,
    chartHeading: '趋势',
    listHeading: '记录',
    scaleChange: (scale) => `改用 ${scale}`,
    exportFhir: '导出 FHIR',
    exported: (path, n) => `已导出 ${n} 条到 ${path}`,
    signInToRecord: '登录后可记录评估',
  },

  session: {
    signIn: '登录',
    signOut: '退出登录',
    signedInAs: (name) => `当前：${name}`,
    locked: (name) => `已锁定：${name}`,
    dialogTitle: '工作人员登录',
    unlockTitle: (name) => `${name}，请输入 PIN 解锁`,
    staffLabel: '姓名',
    pickStaff: '请选择',
    pinLabel: 'PIN',
    submit: '登录',
    unlock: '解锁',
    switchUser: '换人登录',
    cancel: '取消',
    roles: { nurse: '护士', doctor: '医生' },
    noPin: '未设置 PIN',
  },

  reassess: {
    heading: '待复评',
    intro: (m) => `本机记录的、有处理措施但尚未复评的评估（处理后 ${m} 分钟需复评）。`,
    none: '没有待复评的患者',
    overdue: (n) => `${n} 位已超时`,
    patient: '患者',
    assessed: '评估',
    intervention: '处理措施',
    due: '复评时间',
    open: '打开',
    exportAll: '导出全部评估 (FHIR)',
  },
  // ---- Installation: diagnostics and first-run provisioning (issue #8) ----
  install: {
    nav: '诊断',
    notProvisioned: '未注册：仅离线使用本机数据',
    notProvisionedShort: '未注册',
    heading: '诊断信息',
    version: '程序版本',
    dataDir: '数据目录',
    database: '数据库',
    databaseSize: (kib, schema) => `${kib} KiB，结构版本 ${schema}`,
    logDir: '日志目录',
    clinic: '诊所',
    server: '中心服务器',
    source: { flag: '来自启动参数', environment: '来自环境变量', provisioned: '来自本机注册', installed: '来自安装包', none: '未配置' },
    sync: '同步',
    lastSync: '上次同步',
    lastError: '最近错误',
    none: '无',
    problems: '配置问题',
    setAsideHeading: '已搁置的下发记录',
    setAsideHint: '中心服务器下发了本机无法保存的记录。其余记录照常同步；请在服务器上修正这些记录，修正后会自动下发。',
    setAsideStream: { patients: '患者', staff: '员工', appointments: '预约' },
    setAsideColumns: { stream: '类别', id: '编号', reason: '原因', at: '时间' },
    testConnection: '测试连接',
    testing: '正在测试…',
    connectionOk: '连接正常：服务器可达，凭证有效',
    failure: {
      not_configured: '未配置中心服务器地址和凭证',
      bad_url: '服务器地址无效，应以 http:// 或 https:// 开头',
      dns: '找不到服务器名称（DNS）：请检查地址拼写和本机 DNS 设置',
      refused: '服务器拒绝连接：该端口没有服务在运行',
      timeout: '服务器无响应：服务器可能已关机，或被防火墙拦截',
      tls: '安全连接（TLS）失败：证书不受信任或名称不符，或该端口不支持 https',
      not_clinic_central: '该地址有服务应答，但不是诊所中心服务器：请检查地址和端口',
      credential_rejected: '服务器拒绝了本机凭证：请向管理员索取新的令牌或注册码',
      server_error: '服务器在运行但报告了错误：请管理员查看服务器日志',
      network: '网络连接中断：请检查网络',
    },
    exportBundle: '导出支持信息包',
    bundleWritten: (path) => `已保存（不含令牌和患者信息）：${path}`,
    provisionHeading: '注册本机',
    provisionHint: '粘贴管理员提供的注册码（CDP1-…）或诊所配置文件内容。保存前会先检查服务器和凭证。',
    provisionCode: '注册码或配置',
    provisionButton: '检查并注册',
    provisioned: (clinic) => `已注册到诊所 ${clinic}`,
    restartNeeded: '新设置将在重新启动程序后生效',
  },
};

const en: Messages = {
  langName: 'English',
  switchToThis: 'Switch to English',

  appName: 'Clinic Desk',
  nav: { label: 'Main', patients: 'Patients', schedule: 'Schedule', reassess: 'Reassess' },
  clinicUnnamed: 'Unnamed clinic',
  clinicDate: 'Clinic date',
  timeZone: 'Time zone',
  loading: 'Loading…',
  errorDetail: 'Details',
  retry: 'Retry',

  patients: {
    searchLabel: 'Find a patient',
    searchPlaceholder: 'Name or patient ID, or scan a wristband',
    searchHint: '↑↓ to select, Enter to open',
    resultsLabel: 'Search results',
    resultCount: (n) => (n === 1 ? '1 patient' : `${n} patients`),
    truncated: (n) => `Showing the first ${n} only: refine your search`,
    noResults: (q) => `No patient matches “${q}”`,
    startTyping: 'Type a name or ID to search',
    detailHeading: 'Patient',
    noneSelected: 'Select a patient from the list',
    id: 'ID',
    sex: 'Sex',
    birthDate: 'Date of birth',
    age: 'Age',
    insurance: 'Insurance',
    phone: 'Phone',
    noPhone: 'Not recorded',
    phoneTailLabel: 'Phone …',
    pinyinMatch: 'pinyin',
  },

  schedule: {
    heading: 'Appointments',
    prevDay: 'Previous day',
    today: 'Today',
    nextDay: 'Next day',
    dateLabel: 'Date',
    doctorLabel: 'Doctor',
    allDoctors: 'All doctors',
    isToday: 'Today',
    total: (n) => (n === 1 ? '1 appointment' : `${n} appointments`),
    empty: 'No appointments on this day',
    emptyForDoctor: (d) => `No appointments for ${d} on this day`,
    departmentLabel: 'Department',
    allDepartments: 'All departments',
    statusFilterLabel: 'Filter by status (click to toggle)',
    emptyFiltered: 'No appointments match the filters',
    print: 'Print',
    printTitle: (clinic, day) => `${clinic} · appointments ${day}`,
    perDoctorLabel: "Each doctor's appointments",
    onlyDoctor: (d) => `Show only ${d}`,
    boardKeys: 'Arrow keys move between appointments; Enter opens the patient',
    changedMark: 'Updated',
    changedCount: (n) => `${n} updated`,
    freshLocal: "Not connected to a server: showing this device's copy",
    freshPending: 'Not yet updated from the server',
    freshOffline: (at) => `Offline: showing the schedule as of ${at}; it may be out of date`,
    freshStale: (at) => `This schedule may be out of date: last updated from the server at ${at}`,
    freshAt: (at) => `Updated from the server at ${at}`,
    colTime: 'Time',
    colPatient: 'Patient',
    colPatientId: 'ID',
    colAge: 'Age',
    colInsurance: 'Insurance',
    colStatus: 'Status',
    openPatient: (name) => `Open patient ${name}`,
  },

  weekdays: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
  sex: { female: 'Female', male: 'Male', unknown: 'Unknown' },
  age: (y) => `${y} y`,
  insured: 'Insured',
  selfPay: 'Self-pay',
  status: {
    booked: 'Booked',
    checked_in: 'Checked in',
    completed: 'Completed',
    cancelled: 'Cancelled',
    no_show: 'No-show',
  },
  errors: {
    query_too_long: 'The search is too long: shorten it and try again',
    invalid_patient_id: 'That is not a valid patient ID',
    invalid_doctor_id: 'That is not a valid doctor ID',
    invalid_date: 'Invalid date: use YYYY-MM-DD',
    patient_not_found: 'No patient has that ID',
    database_too_new: 'The database is newer than this app: please update Clinic Desk',
    storage_failed: 'Could not read local data: try again, and call support if it persists',
    internal: 'Something went wrong in the app: try again, and call support if it persists',
    backend_unavailable: 'The local service is not reachable: open this screen in the Clinic Desk app',
    invalid_score: 'That score is not on the chosen scale',
    invalid_scale: 'Unknown pain scale',
    invalid_assessment_time: 'The assessment time is not a valid time',
    assessment_in_future: 'The assessment time cannot be later than now. Nothing was saved',
    assessment_too_old: 'The assessment time is earlier than late entries are allowed. Nothing was saved',
    invalid_assessment_details: 'Body site, note or intervention is too long or contains invalid characters',
    invalid_follow_up: 'A reassessment must follow an assessment of the same patient that had an intervention, and come after it',
    report_already_corrected: 'This record has already been corrected: correct the latest one',
    not_signed_in: 'Sign in first (pick your name and enter your PIN)',
    session_locked: 'Locked after inactivity: enter your PIN to unlock',
    unknown_staff: 'No such staff member',
    pin_not_set: 'No PIN has been set for this staff member: call your administrator',
    wrong_pin: 'Wrong PIN',
    pin_attempts_exceeded: 'Too many wrong PINs: wait a minute and try again',
    export_failed: 'The export file could not be written',
    report_not_found: 'No such assessment',
    report_not_rejected: 'Only an assessment the server refused can be submitted again or corrected',
    invalid_correction_reason: 'Enter the reason for the correction',
    sync_not_configured: 'No central server is configured, so there is nothing to sync with',
    // installation (issue #8)
    invalid_profile: 'The clinic profile or enrolment code is not valid; check it and try again',
    other_clinic_data: 'This device holds another clinic\'s data and cannot be enrolled for this clinic; ask your administrator',
    support_bundle_failed: 'The support bundle could not be written',
  },

  sync: {
    label: 'Sync status',
    notConfigured: 'No central server: assessments are kept on this device',
    online: 'Online',
    offline: 'Offline',
    unknown: 'Not connected yet',
    syncing: 'Syncing…',
    waiting: (n) => `${n} waiting to upload`,
    rejected: (n) => `${n} refused by the server`,
    lastSuccess: (t) => `Last synced ${t}`,
    neverSynced: 'Not synced yet',
    syncNow: 'Sync now',
    problem: {
      offline: 'The central server cannot be reached. Everything is saved here and will upload when it is back',
      timeout: 'The central server did not answer in time; retrying automatically',
      server_error: 'The central server is having trouble; retrying automatically',
      credentials_refused: "The central server refused this clinic's credentials. Sync has stopped: call your administrator",
      protocol: 'The connection to the central server broke off; retrying automatically',
      local_storage: "This device's database failed: call your administrator",
      unexpected_answer:
        'The server answered with something that is not a clinic server (a proxy or login page?). Assessments stay saved here and will be retried: check the network or the server address',
      feeds_missing:
        'This server sends no patients or schedules and has not yet confirmed storing an assessment: check the server address',
    },
    uploadOnly: 'Uploads only: this server does not send patients or schedules',
    setAside: (n) => `${n} received record${n === 1 ? '' : 's'} this device cannot store, set aside (see Diagnostics)`,
  },

  reports: {
    heading: 'Pain assessments',
    none: 'No assessments yet',
    record: 'Save assessment',
    newHeading: 'New assessment',
    scaleLabel: 'Scale',
    scale: { nrs: 'Numeric NRS (0–10)', wong_baker_faces: 'Wong-Baker FACES' },
    scaleShort: { nrs: 'NRS', wong_baker_faces: 'FACES' },
    band: { none: 'None', mild: 'Mild', moderate: 'Moderate', severe: 'Severe' },
    faces: ['No hurt', 'Hurts little bit', 'Hurts little more', 'Hurts even more', 'Hurts whole lot', 'Hurts worst'],
    scoreLabel: 'Score',
    pickScore: 'Pick a score first',
    when: 'Assessed at',
    now: 'Now',
    earlier: 'Earlier (late entry)',
    backdateHint: (m) => `On the clinic's clock; at most ${Math.round(m / 60)} hours back`,
    details: 'More (optional): site, rest/movement, note, intervention',
    bodySite: 'Body site',
    activity: 'When',
    activityAny: 'Not stated',
    activityValue: { rest: 'At rest', movement: 'On movement' },
    note: 'Note',
    intervention: 'Intervention (e.g. medication)',
    interventionHint: (m) => `With an intervention, a reassessment is due ${m} minutes later`,
    followsUp: (time, what) => `Reassessment after “${what}” at ${time}`,
    isReassessment: 'Reassessment',
    notReassessment: 'Not a reassessment',
    recordedBy: (name) => `Recorded by ${name}`,
    retry: 'Submit again unchanged',
    correct: 'Correct',
    correctHeading: 'Correct this record',
    correctionReason: 'Reason for the correction (required)',
    correctSave: 'Save correction',
    cancel: 'Cancel',
    corrects: (reason) => `Correction. Reason: ${reason}`,
    supersededBy: 'Superseded',
    state: {
      queued: 'Waiting to upload',
      sending: 'Uploading',
      delivered: 'Uploaded',
      rejected: 'Refused',
      superseded: 'Corrected',
    },
    reassessment: { not_needed: '', done: 'Reassessed', due: 'Reassessment due', overdue: 'Reassessment overdue' },
    dueAt: (t) => `Reassess at ${t}`,
    history: 'Record trail',
    historyAction: (action, detail) =>
      ({
        created: 'Created',
        corrected: 'Created as a correction',
        superseded: 'Superseded',
        sync_state: 'Sync state changed',
        retried: 'Submitted again',
        exported: 'Exported',
      })[action] ?? action + (detail ? ` ${detail}` : ''),
    chartLabel: (n) => `Pain score trend, ${n} assessments`,
    chartHeading: 'Trend',
    listHeading: 'Records',
    scaleChange: (scale) => `Now ${scale}`,
    exportFhir: 'Export FHIR',
    exported: (path, n) => `Exported ${n} to ${path}`,
    signInToRecord: 'Sign in to record an assessment',
  },

  session: {
    signIn: 'Sign in',
    signOut: 'Sign out',
    signedInAs: (name) => `Signed in: ${name}`,
    locked: (name) => `Locked: ${name}`,
    dialogTitle: 'Staff sign-in',
    unlockTitle: (name) => `${name}, enter your PIN to unlock`,
    staffLabel: 'Name',
    pickStaff: 'Choose…',
    pinLabel: 'PIN',
    submit: 'Sign in',
    unlock: 'Unlock',
    switchUser: 'Someone else',
    cancel: 'Cancel',
    roles: { nurse: 'Nurse', doctor: 'Doctor' },
    noPin: 'no PIN set',
  },

  reassess: {
    heading: 'Reassessments due',
    intro: (m) => `Assessments recorded on this device with an intervention and no reassessment yet (due ${m} minutes after).`,
    none: 'No reassessments are due',
    overdue: (n) => `${n} overdue`,
    patient: 'Patient',
    assessed: 'Assessment',
    intervention: 'Intervention',
    due: 'Due',
    open: 'Open',
    exportAll: 'Export all assessments (FHIR)',
  },
  // ---- Installation: diagnostics and first-run provisioning (issue #8) ----
  install: {
    nav: 'Diagnostics',
    notProvisioned: 'Not provisioned: offline on local data only',
    notProvisionedShort: 'Not provisioned',
    heading: 'Diagnostics',
    version: 'App version',
    dataDir: 'Data directory',
    database: 'Database',
    databaseSize: (kib, schema) => `${kib} KiB, schema version ${schema}`,
    logDir: 'Log directory',
    clinic: 'Clinic',
    server: 'Central server',
    source: { flag: 'from a command-line flag', environment: 'from the environment', provisioned: 'provisioned on this device', installed: 'from the installed package', none: 'not configured' },
    sync: 'Sync',
    lastSync: 'Last sync',
    lastError: 'Last error',
    none: 'none',
    problems: 'Configuration problems',
    setAsideHeading: 'Received records set aside',
    setAsideHint:
      'The central server sent records this device cannot store. Everything else keeps syncing; correct these records on the server and they will arrive.',
    setAsideStream: { patients: 'Patient', staff: 'Staff', appointments: 'Appointment' },
    setAsideColumns: { stream: 'Kind', id: 'ID', reason: 'Reason', at: 'When' },
    testConnection: 'Test connection',
    testing: 'Testing…',
    connectionOk: 'Connection works: the server answered and accepted the credential',
    failure: {
      not_configured: 'No server address and credential are configured',
      bad_url: 'The server address is not valid; it must start with http:// or https://',
      dns: 'The server name could not be found (DNS): check the address and this machine\'s DNS settings',
      refused: 'The server refused the connection: nothing is running on that port',
      timeout: 'The server did not answer: it may be off, or a firewall is blocking the traffic',
      tls: 'The secure connection (TLS) failed: the certificate is not trusted or has the wrong name, or the port does not speak https',
      not_clinic_central: 'Something answered at that address, but it is not a Clinic Desk central server: check the address and port',
      credential_rejected: 'The server refused this device\'s credential: ask your administrator for a new token or enrolment code',
      server_error: 'The server is running but reported an error: ask its administrator to check its logs',
      network: 'The connection broke off: check the network',
    },
    exportBundle: 'Export support bundle',
    bundleWritten: (path) => `Saved (no tokens, no patient data): ${path}`,
    provisionHeading: 'Enrol this device',
    provisionHint: 'Paste the enrolment code (CDP1-…) or the clinic profile your administrator gave you. The server and credential are checked before anything is saved.',
    provisionCode: 'Enrolment code or profile',
    provisionButton: 'Check and enrol',
    provisioned: (clinic) => `Enrolled for clinic ${clinic}`,
    restartNeeded: 'The new settings apply after the app is restarted',
  },
};

export const dictionaries: Record<Lang, Messages> = { 'zh-CN': zhCN, en };

export const LANG_STORAGE_KEY = 'clinic-desk.lang';

/** `zh`, `zh-CN`, `zh-Hans-SG`, `zh-TW`, ... → zh-CN; anything else → en. */
export function langFromLocale(locale: string | null | undefined): Lang {
  return locale && locale.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export function isLang(value: unknown): value is Lang {
  return typeof value === 'string' && (LANGS as readonly string[]).includes(value);
}

/** Whether this user has picked a language with the toggle (then nothing overrides it). */
export function hasSavedLang(): boolean {
  try {
    return isLang(localStorage.getItem(LANG_STORAGE_KEY));
  } catch {
    return false;
  }
}

/** The saved choice if there is one, else the OS/webview locale. */
export function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(LANG_STORAGE_KEY);
    if (isLang(saved)) return saved;
  } catch {
    // Storage may be unavailable; fall back to the locale.
  }
  return langFromLocale(typeof navigator === 'undefined' ? null : navigator.language);
}

export function saveLang(lang: Lang): void {
  try {
    localStorage.setItem(LANG_STORAGE_KEY, lang);
  } catch {
    // Not fatal: the choice just isn't remembered.
  }
}
