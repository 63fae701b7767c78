// The front desk's day as the board shows it: the loaded day (in Rust's time order)
// narrowed to a department, grouped into one column per doctor, and filtered by
// status. Pure functions over the day, so the board and the print draw the same lists.

import type { AppointmentDto, AppointmentStatus, DoctorDto } from './bindings';

export const STATUSES: readonly AppointmentStatus[] = [
  'booked',
  'checked_in',
  'completed',
  'cancelled',
  'no_show',
];

/** A shape for each status, so it never rests on colour alone (and prints in black). */
export const GLYPH: Record<AppointmentStatus, string> = {
  booked: '○',
  checked_in: '●',
  completed: '✓',
  cancelled: '✕',
  no_show: '!',
};

export type StatusCounts = Record<AppointmentStatus, number>;

export function countByStatus(appointments: readonly AppointmentDto[]): StatusCounts {
  const c: StatusCounts = { booked: 0, checked_in: 0, completed: 0, cancelled: 0, no_show: 0 };
  for (const a of appointments) c[a.status] += 1;
  return c;
}

/** The departments of `doctors`, each once, in the language's order. */
export function departmentsOf(doctors: readonly DoctorDto[]): string[] {
  return [...new Set(doctors.map((d) => d.department))].sort((a, b) => a.localeCompare(b));
}

/** `appointments` of the doctors in `department` ("" = every department). */
export function inDepartment(
  appointments: readonly AppointmentDto[],
  department: string,
  doctorsById: ReadonlyMap<string, DoctorDto>,
): readonly AppointmentDto[] {
  return department === ''
    ? appointments
    : appointments.filter((a) => doctorsById.get(a.doctorId)?.department === department);
}

export interface Column {
  doctor: DoctorDto;
  /** This doctor's appointments that pass the filters, in time order. */
  items: AppointmentDto[];
  /** This doctor's appointments per status, before the status filter. */
  counts: StatusCounts;
}

/** A doctor the device does not know yet: named by the ID. */
function unknownDoctor(id: string): DoctorDto {
  return { id, name: id, department: '' };
}

/**
 * One column per doctor with visits in `appointments` (in the order of `doctorOptions`;
 * a visit of a doctor the device does not know yet gets a column named by the ID), or
 * only `doctorId`'s column when one is chosen. Rust sends the day in time order (by
 * instant, so a repeated hour on a daylight-saving day stays in order); grouping and
 * filtering keep it, and no re-sort is needed.
 */
export function boardColumns(
  appointments: readonly AppointmentDto[],
  filters: {
    doctorId: string;
    doctorOptions: readonly DoctorDto[];
    doctorsById: ReadonlyMap<string, DoctorDto>;
    hiddenStatuses: readonly AppointmentStatus[];
  },
): Column[] {
  const { doctorId, doctorOptions, doctorsById, hiddenStatuses } = filters;
  const groups = new Map<string, AppointmentDto[]>();
  for (const a of appointments) {
    const g = groups.get(a.doctorId);
    if (g) g.push(a);
    else groups.set(a.doctorId, [a]);
  }
  const order: DoctorDto[] = [];
  if (doctorId !== '') {
    order.push(doctorsById.get(doctorId) ?? unknownDoctor(doctorId));
  } else {
    for (const d of doctorOptions) if (groups.has(d.id)) order.push(d);
    for (const id of groups.keys()) {
      if (!doctorsById.has(id)) order.push(unknownDoctor(id));
    }
  }
  const hidden = new Set(hiddenStatuses);
  return order.map((doctor) => {
    const all = groups.get(doctor.id) ?? [];
    return {
      doctor,
      items: hidden.size === 0 ? all : all.filter((a) => !hidden.has(a.status)),
      counts: countByStatus(all),
    };
  });
}
