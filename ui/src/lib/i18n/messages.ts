// What every language of the UI must say. Each dictionary (one file per language
// beside this one) has this type, so a key missing from any of them, or an error
// code Rust adds to `ErrorCode` without a translation, fails `svelte-check` and
// therefore `npm run build`.

import type {
  Activity,
  AppointmentStatus,
  ConnectionFailureDto,
  ErrorCode,
  PainScale,
  PulledStreamDto,
  StoreKeyDto,
  Reassessment,
  ReportStateDto,
  SettingsSourceDto,
  Sex,
  SyncProblemKindDto,
  Trend,
} from '../bindings';
import type { UiErrorCode } from '../api';
import type { Band } from '../pain';

export type Lang = 'zh-CN' | 'en';

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
  /** Shown in place of a time that is missing or unparsable (never as 1970 or blank). */
  invalidTime: string;
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
    /** A new device loading its clinic: records so far, of all, and the percent. */
    bootstrapLoading: (done: number, total: number, percent: number) => string;
    /** Every record is in; the name search is being built. */
    bootstrapIndexing: (percent: number) => string;
    bootstrapTimeLeft: (seconds: number) => string;
    /** What works meanwhile. */
    bootstrapIdsWork: string;
    bootstrapProgressLabel: string;
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

  /** The ward pain board (病区疼痛一览) for the nurse in charge. */
  ward: {
    nav: string;
    heading: string;
    /** What the board lists and in which order, for a window of `hours`. */
    intro: (hours: number) => string;
    none: (hours: number) => string;
    count: (n: number) => string;
    /** Accessible name of the table. */
    tableLabel: string;
    colPatient: string;
    colScore: string;
    colTrend: string;
    colWhen: string;
    colBy: string;
    colReassess: string;
    trend: Record<Trend, string>;
    /** The score before the latest one. */
    trendFrom: (previous: number) => string;
    /** How long ago, in whole minutes. */
    ago: (minutes: number) => string;
    thisDevice: string;
    otherDevice: (tail: string) => string;
    noReassessment: string;
    openPatient: (name: string) => string;
    keys: string;
    asOf: (time: string) => string;
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
    /** `unknown`: a band the UI does not know, shown as such (never as a known band). */
    band: Record<Band, string>;
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
    /** The list's button that draws the next page of older records; `n` are not drawn yet. */
    showEarlier: (page: number, n: number) => string;
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
    cancel: string;
    roles: Record<string, string>;
    noPin: string;
    /** Locks the session now (the member steps away). */
    lock: string;
    /** Under a locked session: only its member's PIN opens it. */
    heldHint: (name: string) => string;
    /** What covers the window while nobody is signed in or the session is locked. */
    coverSignedOut: string;
    coverLocked: (name: string) => string;
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
    /** Who owes it: the member who recorded the intervention, on which device. */
    owedBy: string;
  };

  // One clinic record on every device: who recorded a report where, and concurrent corrections.
  record: {
    /** `device` is "this device" or a received report's device. */
    recordedOn: (device: string, name: string) => string;
    thisDevice: string;
    /** A received report's device, by the first characters of its ID. */
    otherDevice: (shortId: string) => string;
    unknownDevice: string;
    unknownMember: string;
    received: (time: string) => string;
    conflicting: string;
    conflictHint: string;
    shownCurrent: string;
    resolve: string;
    resolveHeading: string;
    resolveSave: string;
    resolveReason: string;
  };

  // Installation: diagnostics and first-run provisioning.
  install: {
    nav: string;
    notProvisioned: string;
    notProvisionedShort: string;
    heading: string;
    version: string;
    dataDir: string;
    database: string;
    databaseSize: (kib: number, schema: number) => string;
    storeKey: string;
    storeKeyAt: Record<StoreKeyDto, string>;
    logDir: string;
    clinic: string;
    server: string;
    source: Record<SettingsSourceDto, string>;
    sync: string;
    lastSync: string;
    lastError: string;
    none: string;
    problems: string;
    /** `server.allow_insecure_http = true` in the profile: shown in red. */
    insecureHttpAllowed: string;
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
