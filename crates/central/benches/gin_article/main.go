// The hospital's original report server, as the article this project grew from
// (../shared/seeds) writes it: Gin, gin.Default(), ShouldBindJSON into
// PatientReport, a server-made reportId and submitTime, an in-memory map behind
// the ReportStorage interface, and a Printf per saved report. The article's
// packages (service, main) are folded into one file so Debian's packaged Gin can
// build it offline (GOPATH mode, no module download).
//
// Two changes, both needed to run it under load, neither making it slower:
//   - the map is guarded by a mutex: the article's bare map write from concurrent
//     handlers makes Go abort with "concurrent map writes" within a second of load;
//   - it listens on the address given as its first argument instead of ":8080",
//     so the benchmark can pick a free loopback port.
//
// The benchmark (benches/ingest.rs) builds it with `go build` and loads it and
// clinic-central with the same wrk script in one run.
package main

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// PatientReport ePRO数据结构体
type PatientReport struct {
	ReportID   string `json:"reportId"`
	PatientID  string `json:"patientId"`
	PainScore  int    `json:"painScore"` // 疼痛评分, 0-10
	SubmitTime int64  `json:"submitTime"`
}

// ReportStorage 定义了报告存储的行为规范
type ReportStorage interface {
	Save(report *PatientReport) error
}

// ReportService 包含了业务逻辑所需的所有依赖，这里是存储
type ReportService struct {
	storage ReportStorage
}

// NewReportService 是 ReportService 的构造函数
func NewReportService(storage ReportStorage) *ReportService {
	return &ReportService{storage: storage}
}

// SubmitReport 是一个 Gin 的 Handler 函数
func (s *ReportService) SubmitReport(c *gin.Context) {
	var report PatientReport

	if err := c.ShouldBindJSON(&report); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "invalid request body"})
		return
	}

	report.ReportID = uuid.New().String()
	report.SubmitTime = time.Now().Unix()

	if err := s.storage.Save(&report); err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": "failed to save report"})
		return
	}

	c.JSON(http.StatusOK, report)
}

// InMemoryStorage 是 ReportStorage 接口的一个内存实现
type InMemoryStorage struct {
	mu      sync.Mutex // added: the article's bare map aborts under concurrent writes
	reports map[string]*PatientReport
}

func NewInMemoryStorage() *InMemoryStorage {
	return &InMemoryStorage{reports: make(map[string]*PatientReport)}
}

// Save 实现了 ReportStorage 接口
func (s *InMemoryStorage) Save(report *PatientReport) error {
	fmt.Printf("Saving report to memory: %+v\n", report)
	s.mu.Lock()
	s.reports[report.ReportID] = report
	s.mu.Unlock()
	return nil
}

func main() {
	r := gin.Default()
	storage := NewInMemoryStorage()
	reportSvc := NewReportService(storage)
	r.POST("/v1/reports", reportSvc.SubmitReport)
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	fmt.Println("Server is running on", addr)
	r.Run(addr)
}
